"""KServe V1 (TensorFlow Serving style): ``{"instances": [...]}`` → ``{"predictions": ...}``."""

from __future__ import annotations

from typing import Any

import orjson

from shipyard.errors import BadRequestError
from shipyard.models.manifest import Signature
from shipyard.serving.codecs._untyped import predictions_of, request_from_arrays, request_from_rows
from shipyard.serving.codecs.v2 import parse_json
from shipyard.serving.types import InferenceRequest, InferenceResponse

__all__ = ["decode_request", "encode_response"]


def decode_request(body: bytes, signature: Signature | None) -> InferenceRequest:
    payload: Any = parse_json(body)
    if isinstance(payload, dict) and "instances" in payload:
        return request_from_rows(payload["instances"], signature)
    if isinstance(payload, dict) and "inputs" in payload:
        return request_from_arrays(payload["inputs"], signature)
    raise BadRequestError('A KServe V1 request is a JSON object with "instances" (or "inputs").')


def encode_response(response: InferenceResponse) -> bytes:
    return orjson.dumps(
        {"predictions": predictions_of(response)}, option=orjson.OPT_SERIALIZE_NUMPY
    )
