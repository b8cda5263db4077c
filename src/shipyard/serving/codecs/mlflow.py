"""MLflow's scoring protocol (``POST /invocations``).

JSON bodies carry exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs``; ``text/csv`` bodies are a table with a header row. Tables
become a pandas DataFrame (``InferenceRequest.dataframe``); the others become tensors.
The answer is ``{"predictions": ...}``.
"""

from __future__ import annotations

import io
from typing import Any

import orjson

from shipyard.errors import BadRequestError, InvalidInputError, UnsupportedMediaTypeError
from shipyard.models.manifest import Signature
from shipyard.serving.codecs._untyped import predictions_of, request_from_arrays, request_from_rows
from shipyard.serving.codecs.v2 import parse_json
from shipyard.serving.types import InferenceRequest, InferenceResponse

__all__ = ["decode_request", "encode_response"]

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_request(body: bytes, content_type: str, signature: Signature | None) -> InferenceRequest:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/csv":
        return InferenceRequest(inputs=[], dataframe=_read_csv(body))
    if media != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content type {content_type or '(none)'!r} is not supported by /invocations; "
            "send application/json or text/csv."
        )
    payload: Any = parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequestError(f"The body must be a JSON object with one of {', '.join(_KEYS)}.")
    present = [k for k in _KEYS if k in payload]
    if len(present) != 1:
        raise BadRequestError(
            f"The body must have exactly one of {', '.join(_KEYS)}; it has "
            f"{', '.join(present) or 'none'}."
        )
    unknown = [k for k in payload if k not in (*_KEYS, "params")]
    if unknown:
        raise BadRequestError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in the body; it takes one of "
            f"{', '.join(_KEYS)} and optionally 'params'."
        )
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadRequestError('"params" must be a JSON object of parameter names to values.')
    key = present[0]
    value = payload[key]
    if key == "instances":
        request = request_from_rows(value, signature)
    elif key == "inputs":
        request = request_from_arrays(value, signature)
    else:
        request = InferenceRequest(inputs=[], dataframe=_dataframe(key, value))
    request.params = params
    return request


def _dataframe(key: str, value: Any) -> Any:
    import pandas as pd

    try:
        if key == "dataframe_split":
            if not isinstance(value, dict) or not isinstance(value.get("data"), list):
                raise InvalidInputError('"dataframe_split" needs a "data" list (and "columns").')
            frame = pd.DataFrame(
                value["data"], columns=value.get("columns"), index=value.get("index")
            )
        else:
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                raise InvalidInputError('"dataframe_records" must be a list of row objects.')
            frame = pd.DataFrame.from_records(value)
    except (ValueError, TypeError, AssertionError) as err:
        raise InvalidInputError(f"{key!r} does not form a table: {err}") from err
    if frame.empty:
        raise InvalidInputError(f"{key!r} has no rows; send at least one.")
    return frame


def _read_csv(body: bytes) -> Any:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise InvalidInputError(f"The CSV body cannot be read: {err}") from err
    if frame.empty:
        raise InvalidInputError("The CSV body has no data rows; send a header and rows.")
    return frame


def encode_response(response: InferenceResponse) -> bytes:
    return orjson.dumps(
        {"predictions": predictions_of(response)}, option=orjson.OPT_SERIALIZE_NUMPY
    )
