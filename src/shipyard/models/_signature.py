"""Signatures: infer one from an input example, and check request inputs against one.

pandas is never imported here: a DataFrame is recognised by duck typing, so the model
server's cold start does not pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.models.manifest import DATATYPES, Signature, TensorSpec

__all__ = [
    "DEFAULT_INPUT_NAME",
    "InputChecker",
    "check_inputs",
    "datatype_for_dtype",
    "dtype_for_datatype",
    "infer_output_specs",
    "infer_signature",
    "is_dataframe",
]

#: Name of the only input of a single-input model (the Open Inference Protocol's usual one).
DEFAULT_INPUT_NAME = "input-0"

_NUMPY_TO_DATATYPE: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
_DATATYPE_TO_NUMPY: dict[str, str] = {v: k for k, v in _NUMPY_TO_DATATYPE.items()}


def datatype_for_dtype(dtype: np.dtype[Any] | type | str) -> str:
    """The Open Inference Protocol datatype for a numpy dtype (strings/objects are BYTES)."""
    dt = np.dtype(dtype)
    if dt.kind in ("U", "S", "O"):
        return "BYTES"
    # Dates travel as ISO strings on every wire protocol we speak.
    if dt.kind in ("M", "m"):
        return "BYTES"
    try:
        return _NUMPY_TO_DATATYPE[dt.name]
    except KeyError:
        raise InvalidInputError(
            f"The numpy dtype {dt} has no Open Inference Protocol datatype; "
            f"convert the data to one of: {', '.join(sorted(_NUMPY_TO_DATATYPE))}, or strings."
        ) from None


def dtype_for_datatype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype for an Open Inference Protocol datatype (BYTES -> object)."""
    if datatype == "BYTES":
        return np.dtype(object)
    try:
        return np.dtype(_DATATYPE_TO_NUMPY[datatype])
    except KeyError:
        raise InvalidInputError(
            f"Unknown datatype {datatype!r}; expected one of: {', '.join(DATATYPES)}."
        ) from None


def is_dataframe(obj: object) -> bool:
    """True for a pandas DataFrame, without importing pandas."""
    cls = type(obj)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")


def _as_array(value: Any, what: str) -> np.ndarray[Any, Any]:
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.startswith("pandas"):  # Series, Index, extension arrays
        return np.asarray(value.to_numpy())
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(
            f"{what} cannot be turned into an array ({err}); pass a numpy array, "
            "a pandas DataFrame, a dict of arrays or a rectangular list."
        ) from err
    return arr


def _spec_for_array(name: str, arr: np.ndarray[Any, Any]) -> TensorSpec:
    if arr.ndim == 0:
        raise InvalidInputError(
            f"Input example {name!r} is a scalar; an example needs a batch axis "
            "(e.g. np.array([value]) or one row: np.array([[...]]))."
        )
    # The first axis is the batch: always variable.
    return TensorSpec(name=name, datatype=datatype_for_dtype(arr.dtype), shape=[-1, *arr.shape[1:]])


def _frame_signature(frame: Any) -> Signature:
    columns = [str(c) for c in frame.columns]
    arrays = [_as_array(frame[c], f"Column {c!r}") for c in frame.columns]
    datatypes = [datatype_for_dtype(a.dtype) for a in arrays]
    numeric = all(dt not in ("BYTES", "BOOL") for dt in datatypes)
    if arrays and numeric:
        # A numeric table is one 2-D tensor: what tabular models and V2 clients expect.
        common = np.result_type(*[a.dtype for a in arrays])
        spec = TensorSpec(
            name=DEFAULT_INPUT_NAME,
            datatype=datatype_for_dtype(common),
            shape=[-1, len(columns)],
            columns=columns,
        )
        return Signature(inputs=[spec], input_type="pandas")
    # Mixed types cannot share a tensor: one 1-D input per column (MLServer's pandas codec).
    return Signature(
        inputs=[
            TensorSpec(name=c, datatype=dt, shape=[-1])
            for c, dt in zip(columns, datatypes, strict=True)
        ],
        input_type="pandas",
    )


def infer_signature(example: Any) -> Signature:
    """Infer the input signature from an example: ndarray, DataFrame, dict of arrays or list.

    The first axis of every input is the batch axis and is recorded as variable (-1).
    """
    if is_dataframe(example):
        return _frame_signature(example)
    if isinstance(example, Mapping):
        if not example:
            raise InvalidInputError("The input example is an empty dict; give at least one input.")
        specs = [
            _spec_for_array(str(k), _as_array(v, f"Input example {k!r}"))
            for k, v in example.items()
        ]
        return Signature(inputs=specs, input_type="dict")
    arr = _as_array(example, "The input example")
    return Signature(inputs=[_spec_for_array(DEFAULT_INPUT_NAME, arr)], input_type="numpy")


def infer_output_specs(outputs: Any) -> list[TensorSpec]:
    """Describe a predictor's outputs: an array is ``output-0``, a dict one tensor per key,
    a DataFrame one per column. ``[]`` when they are not tensors (a scalar, nested data)."""
    if is_dataframe(outputs):
        items = [(str(c), outputs[c]) for c in outputs.columns]
    elif isinstance(outputs, Mapping):
        items = [(str(k), v) for k, v in outputs.items()]
    else:
        items = [("output-0", outputs)]
    specs: list[TensorSpec] = []
    for name, value in items:
        try:
            arr = _as_array(value, f"Output {name!r}")
            datatype = datatype_for_dtype(arr.dtype)
        except InvalidInputError:
            return []
        if arr.ndim == 0:
            return []
        specs.append(TensorSpec(name=name, datatype=datatype, shape=[-1, *arr.shape[1:]]))
    return specs


def _describe(arr: np.ndarray[Any, Any]) -> str:
    return f"{_datatype_name(arr.dtype)} {list(arr.shape)}"


def _datatype_name(dtype: np.dtype[Any]) -> str:
    try:
        return datatype_for_dtype(dtype)
    except InvalidInputError:
        return str(dtype)


def _kind_castable(arr: np.ndarray[Any, Any], datatype: str) -> bool:
    """Whether the array's kind of values can become ``datatype`` (objects: checked later)."""
    if datatype == "BYTES":
        return arr.dtype.kind in ("U", "S", "O")
    if arr.dtype.kind == "O":
        return True
    if arr.dtype.kind in ("U", "S"):
        return False
    target = dtype_for_datatype(datatype)
    if arr.dtype.kind in ("i", "u") and target.kind in ("i", "u"):
        # Signed <-> unsigned (JSON integers arrive as INT64, images want UINT8): fine
        # when every value is in range, which _converted checks.
        return True
    return bool(np.can_cast(arr.dtype, target, casting="same_kind"))


def _casts_safely(dtype: np.dtype[Any], target: np.dtype[Any]) -> bool:
    """Whether every value of ``dtype`` fits ``target``: no value needs checking."""
    return dtype.kind != "O" and bool(np.can_cast(dtype, target, casting="safe"))


def _nan_refused(spec: TensorSpec, dtype: np.dtype[Any]) -> bool:
    """Whether values of ``dtype`` must be checked for NaN against ``spec``."""
    return not spec.allow_nan and dtype.kind in ("f", "c")


def _converted(spec: TensorSpec, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The values as the declared type; raise if any does not fit it.

    Integer casts wrap silently in numpy (300 -> UINT8 is 44) and float casts overflow to
    inf, so a narrowing cast is checked value by value rather than trusted.
    """
    if spec.datatype == "BYTES":
        return arr
    target = dtype_for_datatype(spec.datatype)
    if _casts_safely(arr.dtype, target):
        return arr
    if arr.dtype.kind in ("i", "u") and target.kind in ("i", "u") and arr.size:
        info = np.iinfo(target)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise InvalidInputError(
                f"Input {spec.name!r} has values outside the range of {spec.datatype} "
                f"({info.min}..{info.max}): min {lo}, max {hi}."
            )
        return arr.astype(target)
    try:
        with np.errstate(over="raise", invalid="ignore"):
            return arr.astype(target)
    except (OverflowError, FloatingPointError) as err:
        raise InvalidInputError(
            f"Input {spec.name!r} has values too large for {spec.datatype} ({err})."
        ) from err
    except (ValueError, TypeError) as err:
        raise InvalidInputError(
            f"Input {spec.name!r} has values that cannot be cast to {spec.datatype} ({err}); "
            f"expected {spec.datatype} {spec.shape}, got {_describe(arr)}."
        ) from err


def _check_one(spec: TensorSpec, arr: np.ndarray[Any, Any]) -> None:
    if not _kind_castable(arr, spec.datatype):
        raise InvalidInputError(
            f"Input {spec.name!r} has datatype {_datatype_name(arr.dtype)}, which cannot be "
            f"cast to {spec.datatype}; expected {spec.datatype} {spec.shape}, got "
            f"{_describe(arr)}."
        )
    if arr.ndim != len(spec.shape):
        raise InvalidInputError(
            f"Input {spec.name!r} has {arr.ndim} dimension(s), expected {len(spec.shape)}: "
            f"expected shape {spec.shape}, got {list(arr.shape)}."
        )
    for axis, (want, got) in enumerate(zip(spec.shape, arr.shape, strict=True)):
        if want != -1 and want != got and axis == 1 and arr.ndim == 2 and spec.columns:
            # A table model: the user sent rows (or columns), never a tensor by its name.
            raise InvalidInputError(
                f"Each row has {got} values; the model takes {want} "
                f"({', '.join(spec.columns)}). Send rows of {want} values, or name the "
                "columns (records like '[{\"column\": value, ...}]')."
            )
        if want != -1 and want != got:
            raise InvalidInputError(
                f"Input {spec.name!r} has size {got} on axis {axis}, expected {want}: "
                f"expected shape {spec.shape}, got {list(arr.shape)}."
            )
    if arr.ndim and arr.shape[0] == 0:
        raise InvalidInputError(
            f"Input {spec.name!r} is empty (0 rows, shape {list(arr.shape)}); "
            "send at least one row."
        )
    values = _converted(spec, arr)
    if _nan_refused(spec, values.dtype) and values.size:
        rows = values.reshape(values.shape[0], -1) if values.ndim else values.reshape(1, 1)
        nan_rows = np.flatnonzero(np.isnan(rows).any(axis=1))
        if nan_rows.size:
            raise InvalidInputError(
                f"Input {spec.name!r} contains NaN in {nan_rows.size} row(s) (first: row "
                f"{int(nan_rows[0])}), but this model does not accept NaN; fill or drop them."
            )


def check_inputs(signature: Signature, inputs: Mapping[str, np.ndarray[Any, Any]]) -> None:
    """Raise ``InvalidInputError`` if ``inputs`` do not fit ``signature``.

    Checks: every declared input present, no undeclared input, dtype castable, rank and
    fixed dimensions equal, at least one row, and no NaN where ``allow_nan`` is false.
    """
    expected = {spec.name: spec for spec in signature.inputs}
    unknown = [name for name in inputs if name not in expected]
    if unknown:
        raise InvalidInputError(
            f"Unknown input(s) {', '.join(repr(n) for n in unknown)}; "
            f"this model takes: {', '.join(repr(n) for n in expected)}."
        )
    for name, spec in expected.items():
        if name not in inputs:
            raise InvalidInputError(
                f"Missing input {name!r} ({spec.datatype} {spec.shape}); this model takes: "
                f"{', '.join(repr(n) for n in expected)}, got: "
                f"{', '.join(repr(n) for n in inputs) or 'none'}."
            )
        _check_one(spec, np.asarray(inputs[name]))


class InputChecker:
    """``check_inputs`` for one signature, remembering the layouts (each input's name,
    dtype and shape past the first axis) it accepted whatever the values were: a server
    sees the same layout on every request, and the check costs more than a lookup.

    A layout is remembered only when no value could change the verdict: the first axis
    is variable, the cast to the declared type is safe (no range check), and NaN is
    allowed or impossible. Zero rows
    and scalars are never remembered (they are refused, or their verdict depends on
    more than the layout).
    """

    __slots__ = ("_accepted", "signature")

    #: Layouts remembered per signature at most: a client inventing new trailing shapes
    #: must not grow a worker's memory.
    MAX_LAYOUTS = 64

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self._accepted: set[tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...]] = set()

    def __call__(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> None:
        """Raise ``InvalidInputError`` if ``inputs`` do not fit the signature."""
        key = _layout(inputs)
        if key is not None and key in self._accepted:
            return
        check_inputs(self.signature, inputs)
        if (
            key is not None
            and len(self._accepted) < self.MAX_LAYOUTS
            and _verdict_is_values_free(self.signature, inputs)
        ):
            self._accepted.add(key)


def _layout(
    inputs: Mapping[str, np.ndarray[Any, Any]],
) -> tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...] | None:
    key = []
    for name, arr in inputs.items():
        if not isinstance(arr, np.ndarray) or arr.ndim == 0 or arr.shape[0] == 0:
            return None
        key.append((name, arr.dtype, arr.shape[1:]))
    return tuple(key)


def _verdict_is_values_free(
    signature: Signature, inputs: Mapping[str, np.ndarray[Any, Any]]
) -> bool:
    """Whether ``check_inputs`` (just passed) would pass for any values and any number
    of rows of this layout: the first axis is variable, ``_converted`` checks no value,
    and the NaN rule does not apply."""
    for spec in signature.inputs:
        if not spec.shape or spec.shape[0] != -1:
            return False
        if spec.datatype == "BYTES":
            continue
        dtype = inputs[spec.name].dtype
        if not _casts_safely(dtype, dtype_for_datatype(spec.datatype)) or _nan_refused(spec, dtype):
            return False
    return True
