"""Shared by the protocols whose JSON carries no datatypes (MLflow, KServe V1, Seldon).

Their arrays take the datatype the model's signature declares (refusing values of the
wrong kind), or, without a signature, the one numpy infers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.models.manifest import Signature
from shipyard.serving.codecs._tensors import array_from_data, datatype_of, to_bytes_array
from shipyard.serving.types import InferenceRequest, InferenceResponse, Tensor

__all__ = ["predictions_of", "request_from_arrays", "request_from_rows"]


def _tensor(name: str, data: Any, datatype: str | None) -> Tensor:
    if isinstance(data, list) and not data:
        raise InvalidInputError(f"Input {name!r} is empty; send at least one row.")
    try:
        raw = data if isinstance(data, np.ndarray) else np.asarray(data)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(
            f"Input {name!r}: rows of different lengths or mixed values ({err})."
        ) from err
    if raw.dtype.kind == "O" and datatype not in ("BYTES", "BOOL"):
        # A null in a numeric input is NaN (as MLflow does), however many rows there are.
        try:
            raw = np.array(data, dtype=np.float64)
        except (ValueError, TypeError):
            pass
        else:
            if datatype is not None and datatype not in ("FP16", "FP32", "FP64"):
                datatype = "FP64"  # a null cannot be an integer; the signature check says so
    if raw.dtype.kind == "O" and datatype != "BYTES":
        raise InvalidInputError(
            f"Input {name!r}: rows of different lengths, nulls or mixed values; expected a "
            "regular array."
        )
    if datatype is None:
        datatype = "BYTES" if raw.dtype.kind in "USO" else datatype_of(raw)
    flat = (
        to_bytes_array(name, raw.tolist())
        if datatype == "BYTES"
        else array_from_data(name, raw, datatype)
    )
    return Tensor(name=name, datatype=datatype, shape=list(raw.shape), data=flat.reshape(raw.shape))


def _datatype(signature: Signature | None, name: str) -> str | None:
    if signature is None:
        return None
    for spec in signature.inputs:
        if spec.name == name:
            return spec.datatype
    return None


def _single_name(signature: Signature | None) -> str:
    if signature is not None and len(signature.inputs) == 1:
        return signature.inputs[0].name
    return "input-0"


def request_from_arrays(data: Any, signature: Signature | None) -> InferenceRequest:
    """Columnar input: one array for the model's single input, or a dict name → array."""
    if isinstance(data, dict):
        if not data:
            raise InvalidInputError("The inputs object is empty; send at least one input.")
        inputs = [_tensor(str(k), v, _datatype(signature, str(k))) for k, v in data.items()]
    else:
        name = _single_name(signature)
        inputs = [_tensor(name, data, _datatype(signature, name))]
    return InferenceRequest(inputs=inputs)


def request_from_rows(rows: Any, signature: Signature | None) -> InferenceRequest:
    """Row input (``instances``): a list of rows, or of ``{input: value}`` objects."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError('"instances" must be a non-empty list of rows.')
    if all(isinstance(r, dict) for r in rows):
        keys = list(rows[0])
        if any(list(r) != keys for r in rows):
            raise InvalidInputError("Every instance object must have the same keys.")
        columns = {k: [r[k] for r in rows] for k in keys}
        return request_from_arrays(columns, signature)
    return request_from_arrays(rows, signature)


def _jsonable(tensor: Tensor) -> Any:
    if tensor.datatype == "BYTES":
        return (
            np.vectorize(
                lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v),
                otypes=[object],
            )(tensor.data).tolist()
            if tensor.data.size
            else []
        )
    return tensor.data


def predictions_of(response: InferenceResponse) -> Any:
    """The ``predictions`` value: the one output's array, a dict of them, or records."""
    outputs = response.outputs
    if response.parameters.get("content_type") == "pd":
        # A DataFrame answer goes back as records, as MLflow's own server does.
        columns = {t.name: np.asarray(_jsonable(t)).tolist() for t in outputs}
        n = len(outputs[0].data) if outputs else 0
        return [{name: col[i] for name, col in columns.items()} for i in range(n)]
    if len(outputs) == 1:
        return _jsonable(outputs[0])
    return {t.name: _jsonable(t) for t in outputs}
