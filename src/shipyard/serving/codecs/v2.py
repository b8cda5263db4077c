"""Open Inference Protocol (V2) over REST: JSON tensors and the binary tensor extension.

The binary extension (Triton's, also spoken by KServe and MLServer clients): the body is
``<JSON header><raw tensor bytes...>``, the header length in the
``Inference-Header-Content-Length`` HTTP header, and each binary tensor's byte count in
its ``parameters.binary_data_size``. BYTES tensors in binary form are a sequence of
4-byte little-endian lengths, each followed by that many bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from shipyard.errors import BadRequestError, InvalidInputError, ShipyardError
from shipyard.serving.codecs._numbers import MARK, NumberParser
from shipyard.serving.codecs._tensors import (
    DATATYPE_TO_NUMPY,
    array_from_data,
    datatype_of,
    ensure_size,
)
from shipyard.serving.types import InferenceRequest, InferenceResponse, RequestedOutput, Tensor

__all__ = [
    "decode_request",
    "encode_request",
    "encode_response",
    "parse_json",
    "tensor_to_json",
]

_DUMP_OPTS = orjson.OPT_SERIALIZE_NUMPY


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; malformed JSON is the caller's 400."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise BadRequestError(f"The request body is not valid JSON: {err}") from err


def decode_request(
    body: bytes, header_length: int | None = None, numbers: NumberParser | None = None
) -> InferenceRequest:
    """Decode a V2 infer request body (JSON, or JSON + binary tensors).

    With ``numbers`` (the compiled parser), flat numeric ``data`` arrays of float tensors
    skip Python objects; whatever that path does not take, or finds wrong, is decoded
    again the ordinary way, so every answer and every error is the ordinary path's.
    """
    if numbers is not None and header_length is None:
        cut = numbers.cut(body)
        if cut is not None:
            try:
                return _decode_payload(orjson.loads(cut[0]), b"", dict(cut[1]))
            except (orjson.JSONDecodeError, ShipyardError, _NotFast):
                pass
    if header_length is None:
        payload = parse_json(body)
        binary = b""
    else:
        if header_length < 0 or header_length > len(body):
            raise BadRequestError(
                f"Inference-Header-Content-Length is {header_length} but the body has only "
                f"{len(body)} bytes."
            )
        payload = parse_json(body[:header_length])
        binary = body[header_length:]
    return _decode_payload(payload, binary, None)


class _NotFast(Exception):
    """The fast path's cut does not fit this request: decode it the ordinary way."""


def _decode_payload(
    payload: Any, binary: bytes, arrays: dict[str, np.ndarray[Any, Any]] | None
) -> InferenceRequest:
    """``arrays``: the fast path's cut-out data by marker; each must be used, once."""
    if not isinstance(payload, dict):
        raise BadRequestError('An infer request must be a JSON object with "inputs".')
    raw_inputs = payload.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInputError('An infer request needs a non-empty "inputs" list.')
    inputs: list[Tensor] = []
    offset = 0
    for index, item in enumerate(raw_inputs):
        tensor, offset = _decode_tensor(item, index, binary, offset, arrays)
        inputs.append(tensor)
    if arrays:  # a marker landed somewhere else than a float tensor's data
        raise _NotFast
    if offset != len(binary):
        raise BadRequestError(
            f"The body has {len(binary) - offset} bytes of binary data that no input claims "
            "(check binary_data_size)."
        )
    request_id = payload.get("id")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequestError('"parameters" must be a JSON object.')
    return InferenceRequest(
        inputs=inputs,
        id=None if request_id is None else str(request_id),
        parameters=parameters,
        outputs=_decode_outputs(payload.get("outputs")),
    )


def _decode_tensor(
    item: Any,
    index: int,
    binary: bytes,
    offset: int,
    arrays: dict[str, np.ndarray[Any, Any]] | None = None,
) -> tuple[Tensor, int]:
    if not isinstance(item, dict):
        raise InvalidInputError(f"Input #{index} must be a JSON object.")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f'Input #{index} needs a "name" string.')
    datatype = item.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPE_TO_NUMPY:
        raise InvalidInputError(
            f"Input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPE_TO_NUMPY)}."
        )
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        raise InvalidInputError(f'Input {name!r}: "shape" must be a list of integers.')
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInputError(f'Input {name!r}: "parameters" must be a JSON object.')
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise InvalidInputError(
                f"Input {name!r}: binary_data_size {size!r} does not fit the "
                f"{len(binary) - offset} bytes of binary data left."
            )
        flat = _from_raw(name, datatype, binary[offset : offset + size])
        offset += size
        parameters = {k: v for k, v in parameters.items() if k != "binary_data_size"}
    else:
        if "data" not in item:
            raise InvalidInputError(f'Input {name!r} has no "data".')
        flat = _data(name, item["data"], datatype, arrays)
    data = ensure_size(name, flat, shape)
    return Tensor(name=name, datatype=datatype, shape=shape, data=data, parameters=parameters), (
        offset
    )


_FLOATS = ("FP64", "FP32", "FP16")


def _data(
    name: str, data: Any, datatype: str, arrays: dict[str, np.ndarray[Any, Any]] | None
) -> np.ndarray[Any, Any]:
    if arrays is not None and isinstance(data, str) and data.startswith(MARK):
        values = arrays.pop(data, None)
        if values is None or datatype not in _FLOATS:
            raise _NotFast
        if datatype == "FP64":
            return values  # the parser's own dtype (an errstate costs 2 us a request)
        # As array_from_data casts the float64 array numpy makes of the same numbers.
        with np.errstate(over="ignore"):
            return values.astype(DATATYPE_TO_NUMPY[datatype], copy=False)
    return array_from_data(name, data, datatype)


def _from_raw(name: str, datatype: str, raw: bytes) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        items: list[bytes] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise InvalidInputError(f"Input {name!r}: truncated BYTES length prefix.")
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise InvalidInputError(f"Input {name!r}: a BYTES element overruns the data.")
            items.append(raw[pos : pos + length])
            pos += length
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out
    dtype = DATATYPE_TO_NUMPY[datatype]
    if len(raw) % dtype.itemsize:
        raise InvalidInputError(
            f"Input {name!r}: {len(raw)} bytes of binary data is not a whole number of "
            f"{datatype} values ({dtype.itemsize} bytes each)."
        )
    # A copy, so the array owns writable memory independent of the request body.
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)


def _decode_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequestError('"outputs" must be a list of {"name": ...} objects.')
    out: list[RequestedOutput] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequestError('Each entry of "outputs" needs a "name" string.')
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequestError(f"Output {item['name']!r}: parameters must be an object.")
        out.append(RequestedOutput(name=item["name"], parameters=params))
    return out


def tensor_to_json(tensor: Tensor) -> dict[str, Any]:
    """A tensor as a V2 JSON object; numeric data goes through orjson's numpy fast path."""
    data = tensor.data
    if tensor.datatype == "BYTES":
        values: Any = [_bytes_to_str(v) for v in data.ravel().tolist()]
    elif data.dtype == np.float16:
        values = data.astype(np.float32).ravel()
    else:
        values = np.ascontiguousarray(data).ravel()
    out: dict[str, Any] = {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
        "data": values,
    }
    if tensor.parameters:
        out["parameters"] = tensor.parameters
    return out


def _bytes_to_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _raw_bytes(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        parts: list[bytes] = []
        for value in tensor.data.ravel().tolist():
            item = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(item)))
            parts.append(item)
        return b"".join(parts)
    dtype = DATATYPE_TO_NUMPY[tensor.datatype]
    return np.ascontiguousarray(tensor.data, dtype=dtype.newbyteorder("<")).tobytes()


def encode_response(
    response: InferenceResponse, binary_outputs: set[str] | bool = False
) -> tuple[bytes, int | None]:
    """The response body and, when some outputs are binary, the JSON header length."""
    header: dict[str, Any] = {"model_name": response.model_name, "outputs": []}
    if response.model_version is not None:
        header["model_version"] = response.model_version
    if response.id is not None:
        header["id"] = response.id
    if response.parameters:
        header["parameters"] = response.parameters
    return _body(header, "outputs", response.outputs, binary_outputs)


def _body(
    header: dict[str, Any], key: str, tensors: list[Tensor], binary: set[str] | bool
) -> tuple[bytes, int | None]:
    """``header`` with ``tensors`` as JSON under ``key`` (in its place); those ``binary``
    selects (all, or by name) use the binary extension, their bytes after the JSON.
    Returns the body and, when some tensor is binary, the JSON header length."""
    blobs: list[bytes] = []
    header[key] = [
        _binary_tensor_json(tensor, blobs)
        if binary is True or (isinstance(binary, set) and tensor.name in binary)
        else tensor_to_json(tensor)
        for tensor in tensors
    ]
    head = orjson.dumps(header, option=_DUMP_OPTS)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _binary_tensor_json(tensor: Tensor, blobs: list[bytes]) -> dict[str, Any]:
    """The JSON part of a tensor sent with the binary extension; its bytes go to ``blobs``."""
    blob = _raw_bytes(tensor)
    blobs.append(blob)
    return {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
        "parameters": {**tensor.parameters, "binary_data_size": len(blob)},
    }


def binary_outputs_wanted(request: InferenceRequest) -> set[str] | bool:
    """Which outputs the client asked for in binary form (Triton's parameters)."""
    if request.parameters.get("binary_data_output") is True:
        return True
    wanted = {
        out.name for out in request.outputs or [] if out.parameters.get("binary_data") is True
    }
    return wanted


def encode_request(
    inputs: list[Tensor],
    *,
    request_id: str | None = None,
    binary: bool = False,
    outputs: list[RequestedOutput] | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Client side: a V2 infer request body (used by tests and ``shipyard.testing``)."""
    header: dict[str, Any] = {"inputs": []}
    if request_id is not None:
        header["id"] = request_id
    if parameters:
        header["parameters"] = parameters
    if outputs is not None:
        header["outputs"] = [
            {"name": o.name, **({"parameters": o.parameters} if o.parameters else {})}
            for o in outputs
        ]
    return _body(header, "inputs", inputs, binary)


def decode_response(body: bytes, header_length: int | None = None) -> InferenceResponse:
    """Client side: a V2 infer response body back into tensors."""
    if header_length is None:
        payload = parse_json(body)
        binary = b""
    else:
        payload = parse_json(body[:header_length])
        binary = body[header_length:]
    outputs: list[Tensor] = []
    offset = 0
    for index, item in enumerate(payload.get("outputs", [])):
        tensor, offset = _decode_tensor(item, index, binary, offset)
        outputs.append(tensor)
    return InferenceResponse(
        model_name=payload["model_name"],
        model_version=payload.get("model_version"),
        id=payload.get("id"),
        parameters=payload.get("parameters") or {},
        outputs=outputs,
    )


def tensor_from_array(name: str, array: Any) -> Tensor:
    """A tensor named ``name`` from any array-like (strings become BYTES)."""
    arr = np.asarray(array)
    if arr.dtype.kind in "US":
        arr = (
            np.vectorize(lambda s: s.encode() if isinstance(s, str) else bytes(s), otypes=[object])(
                arr
            )
            if arr.size
            else arr.astype(object)
        )
    return Tensor(name=name, datatype=datatype_of(arr), shape=list(arr.shape), data=arr)
