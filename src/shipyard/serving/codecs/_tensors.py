"""Datatypes and the array checks every codec shares.

Open Inference Protocol datatypes map one to one onto numpy dtypes, except BYTES, which
is an ``object`` array of ``bytes``. Every failure is an ``InvalidInputError`` that
names the input, what came and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.models._signature import dtype_for_datatype
from shipyard.models.manifest import DATATYPES

__all__ = [
    "DATATYPE_TO_NUMPY",
    "array_from_data",
    "datatype_of",
    "ensure_size",
    "to_bytes_array",
]

DATATYPE_TO_NUMPY: dict[str, np.dtype[Any]] = {name: dtype_for_datatype(name) for name in DATATYPES}

_NUMPY_TO_DATATYPE: dict[str, str] = {
    dt.str[1:]: name for name, dt in DATATYPE_TO_NUMPY.items() if name != "BYTES"
}

# Which inferred numpy kinds may be cast to a target kind without losing meaning:
# JSON `1` is fine for FP32, `1.5` is not fine for INT32, `true` is fine only for BOOL.
_ALLOWED_KINDS: dict[str, str] = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The protocol datatype of a numpy array (strings and objects are BYTES)."""
    kind = array.dtype.kind
    if kind in "OSUV":
        return "BYTES"
    name = _NUMPY_TO_DATATYPE.get(array.dtype.str[1:])
    if name is None:
        raise InvalidInputError(f"Arrays of dtype {array.dtype} have no protocol datatype.")
    return name


def ensure_size(name: str, array: np.ndarray[Any, Any], shape: list[int]) -> np.ndarray[Any, Any]:
    """Reshape ``array`` to ``shape``, or say why the data does not fit it."""
    if any((not isinstance(d, int)) or d < 0 for d in shape):
        raise InvalidInputError(
            f"Input {name!r}: shape {shape} is not a list of non-negative integers."
        )
    expected = math.prod(shape)
    if array.size != expected:
        raise InvalidInputError(
            f"Input {name!r}: shape {shape} needs {expected} elements but the data has "
            f"{array.size}."
        )
    return array.reshape(shape)


def to_bytes_array(name: str, data: Any) -> np.ndarray[Any, Any]:
    """A flat ``object`` array of ``bytes`` from JSON strings (or already bytes)."""
    flat = _flatten(name, data)
    out = np.empty(len(flat), dtype=object)
    for i, item in enumerate(flat):
        if isinstance(item, bytes):
            out[i] = item
        elif isinstance(item, str):
            out[i] = item.encode("utf-8", "surrogatepass")
        else:
            raise InvalidInputError(
                f"Input {name!r}: BYTES data must be strings, got {type(item).__name__} "
                f"({item!r:.40})."
            )
    return out


def _flatten(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def array_from_data(name: str, data: Any, datatype: str) -> np.ndarray[Any, Any]:
    """A flat array of ``datatype`` from JSON data (flat or nested lists, or a scalar).

    Refuses values that do not belong to the type instead of silently casting them:
    ``1.5`` for INT32, ``"a"`` for FP32, ``300`` for UINT8.
    """
    if datatype == "BYTES":
        return to_bytes_array(name, data)
    target = DATATYPE_TO_NUMPY.get(datatype)
    if target is None:
        raise InvalidInputError(
            f"Input {name!r}: unknown datatype {datatype!r}; expected one of "
            f"{', '.join(DATATYPE_TO_NUMPY)}."
        )
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(
            f"Input {name!r}: data is not a regular array of numbers ({err})."
        ) from err
    if raw.size == 0:
        return np.empty(0, dtype=target)
    kind = raw.dtype.kind
    if kind == "f" and target == np.uint64 and not isinstance(data, np.ndarray):
        # numpy infers float64 for ints beyond int64 (2**63 and up): retry exactly.
        exact = _exact_uint64(name, data)
        if exact is not None:
            return exact
    if kind == "O" and target.kind == "f" and isinstance(data, list):
        with_nan = _nulls_as_nan(name, data, target)
        if with_nan is not None:
            return with_nan
    if kind not in _ALLOWED_KINDS[target.kind]:
        raise InvalidInputError(
            f"Input {name!r}: datatype is {datatype} but the data holds "
            f"{_describe_kind(kind)} values (e.g. {raw.ravel()[0]!r:.40})."
        )
    if kind == target.kind and raw.dtype.itemsize == target.itemsize:
        return raw.reshape(-1)
    try:
        if target.kind in "iu" and kind in "iu":
            info = np.iinfo(target)
            if raw.min() < info.min or raw.max() > info.max:
                raise InvalidInputError(
                    f"Input {name!r}: a value is out of range for {datatype} "
                    f"([{info.min}, {info.max}])."
                )
        with np.errstate(over="ignore"):
            return raw.astype(target).reshape(-1)
    except (ValueError, TypeError, OverflowError) as err:
        raise InvalidInputError(f"Input {name!r}: cannot convert to {datatype}: {err}") from err


def _nulls_as_nan(name: str, data: list[Any], target: np.dtype[Any]) -> np.ndarray[Any, Any] | None:
    # JSON has no NaN, so a float tensor's null is a missing value, as MLflow reads it.
    flat = _flatten(name, data)
    if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in flat):
        return None
    return np.array([math.nan if v is None else v for v in flat], dtype=target)


def _exact_uint64(name: str, data: Any) -> np.ndarray[Any, Any] | None:
    flat = _flatten(name, data)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return None
    if any(v < 0 or v > 2**64 - 1 for v in flat):
        raise InvalidInputError(f"Input {name!r}: a value is out of range for UINT64.")
    return np.array(flat, dtype=np.uint64)


def _describe_kind(kind: str) -> str:
    return {
        "b": "boolean",
        "i": "integer",
        "u": "integer",
        "f": "floating-point",
        "U": "string",
        "S": "string",
        "O": "mixed or nested",
    }.get(kind, kind)
