"""Seldon Core's protocol: ``{"data": {"ndarray": [...]}}`` (or ``"tensor"``) both ways."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from shipyard.errors import BadRequestError, InvalidInputError
from shipyard.models.manifest import Signature
from shipyard.serving.codecs._untyped import predictions_of, request_from_arrays
from shipyard.serving.codecs.v2 import parse_json
from shipyard.serving.types import InferenceRequest, InferenceResponse

__all__ = ["decode_request", "encode_response"]


def decode_request(body: bytes, signature: Signature | None) -> tuple[InferenceRequest, str]:
    """The request and which form (``ndarray`` or ``tensor``) to answer in."""
    payload: Any = parse_json(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise BadRequestError('A Seldon request is {"data": {"ndarray": [...]}}.')
    if "ndarray" in data:
        return request_from_arrays(data["ndarray"], signature), "ndarray"
    tensor = data.get("tensor")
    if isinstance(tensor, dict):
        shape, values = tensor.get("shape"), tensor.get("values")
        if not isinstance(shape, list) or not isinstance(values, list):
            raise InvalidInputError('A Seldon "tensor" needs "shape" and "values" lists.')
        try:
            array = np.asarray(values).reshape(shape)
        except (ValueError, TypeError) as err:
            raise InvalidInputError(
                f"Seldon tensor: {len(values)} values do not fit shape {shape}."
            ) from err
        return request_from_arrays(array, signature), "tensor"
    raise BadRequestError("A Seldon request needs data.ndarray or data.tensor.")


def encode_response(response: InferenceResponse, form: str) -> bytes:
    predictions = predictions_of(response)
    names = [t.name for t in response.outputs]
    if form == "tensor" and len(response.outputs) == 1:
        out = response.outputs[0]
        data: dict[str, Any] = {
            "names": names,
            "tensor": {"shape": out.shape, "values": np.asarray(predictions).ravel()},
        }
    else:
        data = {"names": names, "ndarray": predictions}
    return orjson.dumps({"data": data, "meta": {}}, option=orjson.OPT_SERIALIZE_NUMPY)
