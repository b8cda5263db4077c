"""Between tensors and what a predictor sees: request tensors → model inputs, and a
predictor's answer → named output tensors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError, PredictorError
from shipyard.models._signature import InputChecker
from shipyard.models.manifest import Signature
from shipyard.serving.codecs._tensors import DATATYPE_TO_NUMPY, datatype_of
from shipyard.serving.types import RequestedOutput, Tensor

__all__ = ["model_inputs", "output_tensors", "text_inputs"]

DEFAULT_OUTPUT = "output-0"


def _check(signature: Signature, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
    from shipyard.models import check_inputs

    check_inputs(signature, arrays)


def _is_text(example: Any) -> bool:
    arr = np.asarray(example)
    if arr.dtype.kind == "U":
        return True
    return arr.dtype == object and arr.size > 0 and isinstance(arr.flat[0], str)


def text_inputs(signature: Signature | None, example: Any) -> frozenset[str]:
    """The BYTES inputs whose input example held ``str`` (the model was saved for text)."""
    if signature is None or example is None or type(example).__name__ == "DataFrame":
        return frozenset()
    specs = [s for s in signature.inputs if s.datatype == "BYTES"]
    if isinstance(example, Mapping):
        return frozenset(s.name for s in specs if s.name in example and _is_text(example[s.name]))
    if len(signature.inputs) == 1 and specs and _is_text(example):
        return frozenset({specs[0].name})
    return frozenset()


def _decoded(name: str, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    try:
        values = [v.decode() if isinstance(v, bytes) else v for v in arr.ravel().tolist()]
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"Input {name!r} must be UTF-8 text: {err}") from err
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(arr.shape)


def _column_table(
    arrays: dict[str, np.ndarray[Any, Any]], columns: list[str]
) -> np.ndarray[Any, Any]:
    cols = [arrays[c].reshape(len(arrays[c]), -1) if arrays[c].ndim else arrays[c] for c in columns]
    if any(c.ndim != 2 or c.shape[1] != 1 for c in cols):
        raise InvalidInputError(
            f"Named column inputs must each hold one value per row; got shapes "
            f"{ {c: list(arrays[c].shape) for c in columns} }."
        )
    if len({c.shape[0] for c in cols}) != 1:
        raise InvalidInputError(
            f"Named column inputs have different row counts: "
            f"{ {c: arrays[c].shape[0] for c in columns} }; send the same number for each."
        )
    return np.concatenate(cols, axis=1)


def model_inputs(
    tensors: list[Tensor],
    signature: Signature | None,
    text: frozenset[str] = frozenset(),
    check: InputChecker | None = None,
) -> Any:
    """Validate request tensors against the signature; one array, or a dict of them.
    Inputs named in ``text`` reach the predictor as ``str``, not ``bytes``. ``check``:
    the signature's own checker (a served model keeps one), else a one-off check."""
    if not tensors:
        raise InvalidInputError("The request has no inputs; send at least one.")
    arrays = {t.name: t.data for t in tensors}
    if len(arrays) != len(tensors):
        raise InvalidInputError("The request names the same input twice.")
    if signature is None:
        return tensors[0].data if len(tensors) == 1 else arrays
    specs = signature.inputs
    columns = specs[0].columns if len(specs) == 1 else None
    if columns and len(tensors) > 1 and set(arrays) == set(columns):
        # One 1-D tensor per named column (MLServer's pandas codec): the model's one
        # table, its columns put in the signature's order by name.
        arrays = {specs[0].name: _column_table(arrays, columns)}
    elif len(specs) == 1 and len(tensors) == 1 and tensors[0].name != specs[0].name:
        # A single-input model accepts its one tensor under any name: clients differ
        # ("input-0", "predict", "input_1") and nothing is ambiguous.
        arrays = {specs[0].name: tensors[0].data}
    if check is not None:
        check(arrays)
    else:
        _check(signature, arrays)
    for spec in specs:
        arr = arrays[spec.name]
        if spec.datatype != "BYTES":
            target = DATATYPE_TO_NUMPY[spec.datatype]
            if arr.dtype != target:
                arrays[spec.name] = arr.astype(target)
        elif spec.name in text and arr.dtype == object:
            arrays[spec.name] = _decoded(spec.name, arr)
    if len(specs) == 1:
        return arrays[specs[0].name]
    return arrays


def _as_array(value: Any, what: str) -> np.ndarray[Any, Any]:
    if isinstance(value, np.ndarray):
        arr = value
    elif hasattr(value, "to_numpy"):
        arr = np.asarray(value.to_numpy())
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise PredictorError(f"{what} is not array-like: {err}") from err
    if arr.ndim == 0:
        arr = arr.reshape(1)
    # Encoders hand arrays to orjson, which takes C order only (a DataFrame's values are
    # often Fortran-ordered); a no-op for the usual C-ordered answer.
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    if arr.dtype.kind == "O":
        arr = (
            np.array(
                [v if isinstance(v, bytes) else str(v).encode() for v in arr.ravel().tolist()],
                dtype=object,
            ).reshape(arr.shape)
            if arr.size
            else arr
        )
    return arr


def _tensor(name: str, value: Any) -> Tensor:
    arr = _as_array(value, f"Output {name!r}")
    try:
        datatype = datatype_of(arr)
    except InvalidInputError as err:
        raise PredictorError(f"Output {name!r}: {err}") from err
    return Tensor(name=name, datatype=datatype, shape=list(arr.shape), data=arr)


def output_tensors(
    result: Any, signature: Signature | None, requested: list[RequestedOutput] | None
) -> tuple[list[Tensor], bool]:
    """Named tensors from a predictor's answer; also whether it was a DataFrame."""
    is_frame = type(result).__name__ == "DataFrame" and hasattr(result, "columns")
    if isinstance(result, Mapping):
        tensors = [_tensor(str(k), v) for k, v in result.items()]
    elif is_frame:
        tensors = [_tensor(str(c), result[c]) for c in result.columns]
    else:
        name = (
            signature.outputs[0].name
            if signature is not None and len(signature.outputs) == 1
            else DEFAULT_OUTPUT
        )
        tensors = [_tensor(name, result)]
    if requested:
        by_name = {t.name: t for t in tensors}
        unknown = [r.name for r in requested if r.name not in by_name]
        if unknown:
            raise InvalidInputError(
                f"Unknown output(s) {', '.join(map(repr, unknown))}; this model gives: "
                f"{', '.join(map(repr, by_name))}."
            )
        tensors = [by_name[r.name] for r in requested]
    return tensors, is_frame
