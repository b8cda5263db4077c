"""Input examples saved as JSON beside the model, and read back as the same kind of object.

The JSON keeps the kind (ndarray, DataFrame, dict of arrays) and each array's dtype, so an
example read back is the example that was saved, and a model server can use it as a
warm-up request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError, MissingDependencyError, ModelLoadError
from shipyard.models._signature import is_dataframe

__all__ = ["EXAMPLE_FILE", "read_input_example", "write_input_example"]

EXAMPLE_FILE = "input_example.json"


def _encode_array(arr: np.ndarray[Any, Any]) -> dict[str, Any]:
    if arr.dtype.kind == "S" or (
        arr.dtype.kind == "O" and any(isinstance(x, bytes) for x in arr.flat)
    ):
        # JSON has no bytes: base64 keeps them exact.
        data = [base64.b64encode(bytes(x)).decode("ascii") for x in arr.flat]
        return {"dtype": "bytes", "shape": list(arr.shape), "data": data}
    if arr.dtype.kind in ("M", "m"):
        return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.astype(str).tolist()}
    if arr.dtype.kind not in ("b", "i", "u", "f", "U", "O"):
        raise InvalidInputError(
            f"Cannot save an input example of dtype {arr.dtype}; use numbers, booleans or strings."
        )
    return {
        "dtype": arr.dtype.str if arr.dtype.kind == "U" else str(arr.dtype),
        "shape": list(arr.shape),
        "data": arr.tolist(),
    }


def _decode_array(obj: Mapping[str, Any]) -> np.ndarray[Any, Any]:
    dtype = obj["dtype"]
    shape = tuple(obj["shape"])
    if dtype == "bytes":
        flat = [base64.b64decode(x) for x in obj["data"]]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(shape)
    if dtype == "object":
        out = np.empty(shape, dtype=object)
        if out.size:
            out[...] = np.asarray(obj["data"], dtype=object).reshape(shape)
        return out
    return np.asarray(obj["data"], dtype=np.dtype(dtype)).reshape(shape)


def encode_example(example: Any) -> dict[str, Any]:
    if is_dataframe(example):
        columns = list(example.columns)
        return {
            "type": "dataframe",
            "columns": [str(c) for c in columns],
            "data": {str(c): _encode_array(np.asarray(example[c].to_numpy())) for c in columns},
        }
    if isinstance(example, Mapping):
        return {
            "type": "dict",
            "data": {str(k): _encode_array(np.asarray(v)) for k, v in example.items()},
        }
    return {"type": "ndarray", "data": _encode_array(np.asarray(example))}


def decode_example(obj: Mapping[str, Any]) -> Any:
    kind = obj.get("type")
    if kind == "ndarray":
        return _decode_array(obj["data"])
    if kind == "dict":
        return {k: _decode_array(v) for k, v in obj["data"].items()}
    if kind == "dataframe":
        try:
            import pandas as pd  # only when a DataFrame example is actually read
        except ImportError as err:
            raise MissingDependencyError("pandas", "batch", "a DataFrame input example") from err
        return pd.DataFrame({c: _decode_array(obj["data"][c]) for c in obj["columns"]})
    raise ValueError(f"unknown input example type {kind!r}")


def write_input_example(model_dir: Path, example: Any) -> str:
    """Write ``example`` to ``model_dir``; returns the file name (relative to the directory)."""
    payload = encode_example(example)
    (Path(model_dir) / EXAMPLE_FILE).write_text(json.dumps(payload), encoding="utf-8")
    return EXAMPLE_FILE


def read_input_example(path: Path) -> Any:
    """Read an input example written by ``write_input_example``."""
    try:
        return decode_example(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(
            f"Cannot read the input example {path}: {err}. Delete the file and the "
            "'input_example' key in shipyard.yaml, or save the model again."
        ) from err
