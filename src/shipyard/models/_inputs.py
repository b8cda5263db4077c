"""One input type per predictor: what it takes, and turning any request into exactly that.

A predictor gets the same kind of object from every route (V2, ``/invocations``, KServe
V1, Seldon, gRPC), from ``load_model(...).predict``, ``Service.predict`` and batch
inference: a ``numpy.ndarray``, a ``pandas.DataFrame`` or a ``dict`` of arrays. It says
which with ``input_type`` on its class; when it does not, the saved signature decides
(a DataFrame example: pandas, a dict example: dict, an array: numpy); with neither, it
gets what the route decoded.

Tables are matched to the signature by column *name*, never by position: a reordered
DataFrame gets the same answer, a missing or unknown column is an error naming it, and a
null in a numeric column is NaN (as MLflow does), whatever the other rows hold.

pandas is imported only when a table is involved, so an array model's server never pays
for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import numpy as np

from shipyard.errors import InvalidInputError, ModelLoadError
from shipyard.models._signature import check_inputs, dtype_for_datatype, is_dataframe
from shipyard.models.manifest import Signature, TensorSpec

__all__ = ["INPUT_TYPES", "InputType", "as_input_type", "input_type_for", "match_frame"]

InputType = Literal["numpy", "pandas", "dict"]
INPUT_TYPES: tuple[str, ...] = get_args(InputType)


def input_type_for(predictor: Any, signature: Signature | None) -> InputType | None:
    """The input type ``predictor`` declares (``input_type = "pandas"``), else the one its
    signature implies; ``None`` when neither says (inputs pass as decoded)."""
    declared = getattr(predictor, "input_type", None)
    if declared is not None:
        if declared not in INPUT_TYPES:
            raise ModelLoadError(
                f"{type(predictor).__name__}.input_type is {declared!r}; use one of "
                f"{', '.join(map(repr, INPUT_TYPES))} (or leave it unset to follow the "
                "model's signature)."
            )
        return declared  # type: ignore[no-any-return]
    if signature is None:
        return None
    if signature.input_type is not None:
        return signature.input_type
    # Signatures saved before input_type was recorded: column names mean a table.
    if len(signature.inputs) == 1:
        return "pandas" if signature.inputs[0].columns else "numpy"
    return "dict"


def _table_columns(signature: Signature | None) -> list[str] | None:
    """The column names a table must have, or None when the model takes columns by position."""
    if signature is None or not signature.inputs:
        return None
    specs = signature.inputs
    if len(specs) == 1:
        spec = specs[0]
        return list(spec.columns) if spec.columns else None
    return [s.name for s in specs]


def _spec_of(signature: Signature, column: str) -> TensorSpec:
    specs = signature.inputs
    if len(specs) == 1:
        return specs[0]
    return next(s for s in specs if s.name == column)


def _numeric(column: str, values: Any, datatype: str) -> Any:
    """A column as ``datatype``; nulls become NaN (an integer column with nulls: float)."""
    import pandas as pd

    target = dtype_for_datatype(datatype)
    if values.dtype == target:
        return values
    if datatype == "BOOL":
        if values.isna().any():
            raise InvalidInputError(f"Column {column!r} has nulls; this model takes BOOL values.")
        return values.astype(bool)
    try:
        numbers = pd.to_numeric(values, errors="raise")
    except (ValueError, TypeError) as err:
        raise InvalidInputError(
            f"Column {column!r} must hold {datatype} numbers: {err}. Send numbers (null for "
            "a missing value)."
        ) from err
    if target.kind in "iu" and numbers.isna().any():
        return numbers.astype(np.float64)  # a null cannot be an integer: NaN, as in MLflow
    try:
        with np.errstate(over="raise", invalid="ignore"):
            return numbers.astype(target)
    except (ValueError, TypeError, OverflowError, FloatingPointError) as err:
        raise InvalidInputError(f"Column {column!r} does not fit {datatype}: {err}") from err


def match_frame(frame: Any, signature: Signature | None) -> Any:
    """``frame`` with the signature's columns, in its order, numeric columns as declared.

    Raises ``InvalidInputError`` naming any missing or unknown column.
    """
    frame = (
        frame.rename(columns=str) if any(not isinstance(c, str) for c in frame.columns) else frame
    )
    if signature is None:
        return frame
    wanted = _table_columns(signature)
    have = list(frame.columns)
    if wanted is None:
        spec = signature.inputs[0]
        width = spec.shape[1] if len(spec.shape) == 2 else 1
        if width != -1 and len(have) != width:
            raise InvalidInputError(
                f"The table has {len(have)} column(s) ({', '.join(map(repr, have))}); the "
                f"model takes {width}, by position (it was saved without column names)."
            )
        wanted = have
    else:
        missing = [c for c in wanted if c not in have]
        if missing:
            raise InvalidInputError(
                f"The input lacks column(s) {', '.join(map(repr, missing))}; the model takes "
                f"{', '.join(map(repr, wanted))}."
            )
        unknown = [c for c in have if c not in wanted]
        if unknown:
            raise InvalidInputError(
                f"The input has column(s) {', '.join(map(repr, unknown))} that the model does "
                f"not take; it takes {', '.join(map(repr, wanted))}. Drop them."
            )
    if len(frame) == 0:
        raise InvalidInputError("The input table has no rows; send at least one.")
    matched = frame[wanted] if wanted != have else frame
    converted = {}
    for name in wanted:
        datatype = _spec_of(signature, name).datatype
        if datatype != "BYTES":
            column = _numeric(name, matched[name], datatype)
            if column is not matched[name]:
                converted[name] = column
    if converted:
        matched = matched.assign(**converted)
    _check_nan(matched, signature)
    return matched


def _check_nan(frame: Any, signature: Signature) -> None:
    """Refuse NaN where a spec says ``allow_nan: false`` (the tensor check says how)."""
    strict = [s for s in signature.inputs if not s.allow_nan]
    if not strict:
        return
    check_inputs(signature, _frame_to_dict(frame, signature, per_spec=True))


def _frame_to_dict(
    frame: Any, signature: Signature | None, *, per_spec: bool = False
) -> dict[str, np.ndarray[Any, Any]]:
    if (
        signature is not None
        and len(signature.inputs) == 1
        and (per_spec or not signature.inputs[0].columns)
    ):
        spec = signature.inputs[0]
        return {spec.name: _frame_to_array(frame, signature)}
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _frame_to_array(frame: Any, signature: Signature | None) -> np.ndarray[Any, Any]:
    if signature is not None and len(signature.inputs) == 1:
        spec = signature.inputs[0]
        if len(spec.shape) == 1:
            return np.asarray(frame.iloc[:, 0].to_numpy())
        if spec.datatype != "BYTES":
            target = dtype_for_datatype(spec.datatype)
            if target.kind in "iu" and frame.isna().to_numpy().any():
                target = np.dtype(np.float64)
            return np.ascontiguousarray(frame.to_numpy(dtype=target))
    return np.ascontiguousarray(frame.to_numpy())


def _array_to_frame(arr: np.ndarray[Any, Any], signature: Signature | None) -> Any:
    import pandas as pd

    columns = _table_columns(signature)
    if arr.ndim == 1:
        name = signature.inputs[0].name if signature is not None else "input-0"
        return pd.DataFrame({columns[0] if columns and len(columns) == 1 else name: arr})
    if arr.ndim != 2:
        raise InvalidInputError(
            f"This model takes a table, but the input has {arr.ndim} dimensions "
            f"(shape {list(arr.shape)}); send rows of values."
        )
    if columns is not None and arr.shape[1] != len(columns):
        raise InvalidInputError(
            f"The input has {arr.shape[1]} column(s), the model takes {len(columns)}: "
            f"{', '.join(map(repr, columns))}."
        )
    return pd.DataFrame(arr, columns=columns)


def _dict_to_frame(data: Mapping[str, Any], signature: Signature | None) -> Any:
    import pandas as pd

    columns: dict[str, Any] = {}
    for key, value in data.items():
        arr = np.asarray(value)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise InvalidInputError(
                f"Input {key!r} has shape {list(arr.shape)}; a table takes one value per row "
                "for each named input."
            )
        columns[str(key)] = arr
    try:
        frame = pd.DataFrame(columns)
    except ValueError as err:
        raise InvalidInputError(f"The named inputs do not form a table: {err}") from err
    return match_frame(frame, signature)


def _dict_to_array(data: Mapping[str, Any], signature: Signature | None) -> Any:
    if len(data) == 1:
        return np.asarray(next(iter(data.values())))
    if signature is not None and _table_columns(signature) is not None:
        return _frame_to_array(_dict_to_frame(data, signature), signature)
    from shipyard.models.runtimes._base import single_array

    return single_array(data, "This model")


def _array_to_dict(arr: np.ndarray[Any, Any], signature: Signature | None) -> dict[str, Any]:
    columns = _table_columns(signature)
    if columns is not None and arr.ndim == 2 and arr.shape[1] == len(columns):
        return {c: arr[:, i] for i, c in enumerate(columns)}
    name = signature.inputs[0].name if signature is not None and signature.inputs else "input-0"
    return {name: arr}


def as_input_type(data: Any, input_type: InputType | None, signature: Signature | None) -> Any:
    """``data`` (array, list, dict of arrays or DataFrame) as ``input_type``.

    A DataFrame is always matched to the signature by column name first. ``None`` (a
    predictor with neither a declared type nor a signature): ``data`` as it is.
    """
    if input_type is None:
        return data
    if is_dataframe(data):
        frame = match_frame(data, signature)
        if input_type == "pandas":
            return frame
        if input_type == "dict":
            return _frame_to_dict(frame, signature)
        return _frame_to_array(frame, signature)
    if isinstance(data, Mapping):
        if input_type == "dict":
            return data
        if input_type == "pandas":
            return _dict_to_frame(data, signature)
        return _dict_to_array(data, signature)
    arr = data if isinstance(data, np.ndarray) else np.asarray(data)
    if input_type == "numpy":
        return arr
    if input_type == "pandas":
        return match_frame(_array_to_frame(arr, signature), signature)
    return _array_to_dict(arr, signature)
