"""Open Inference Protocol protobuf messages <-> the protocol-neutral inference types.

The server side decodes a ``ModelInferRequest`` and encodes a ``ModelInferResponse``;
the client side (tests, benchmarks, users' Python clients) does the opposite. Tensor
data travels either as typed ``contents`` or as little-endian ``raw_*_contents``; a
response uses raw bytes when its request did, as Triton does.
"""

from __future__ import annotations

from shipyard.errors import InvalidInputError
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._parameters import decode_parameters, encode_parameters
from shipyard.serving.grpc._tensors import (
    array_to_contents,
    array_to_raw,
    contents_to_array,
    raw_to_array,
    requires_raw,
)
from shipyard.serving.types import InferenceRequest, InferenceResponse, RequestedOutput, Tensor

__all__ = [
    "decode_infer_request",
    "decode_infer_response",
    "encode_infer_request",
    "encode_infer_response",
]


def decode_infer_request(message: pb.ModelInferRequest) -> InferenceRequest:
    """The ``InferenceRequest`` a ``ModelInferRequest`` carries (model name/version aside)."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInputError(
            f"The request has {len(message.inputs)} inputs but {len(raw)} "
            "raw_input_contents entries; send one raw entry per input, in the same order."
        )
    inputs: list[Tensor] = []
    for index, tensor in enumerate(message.inputs):
        name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInputError(
                    f"Input '{name}' sets contents while the request uses "
                    "raw_input_contents; a request uses one form for all inputs."
                )
            data = raw_to_array(name, datatype, shape, raw[index])
        else:
            data = contents_to_array(name, datatype, shape, tensor.contents)
        inputs.append(
            Tensor(
                name=name,
                datatype=datatype,
                shape=shape,
                data=data,
                parameters=decode_parameters(tensor.parameters, f"input '{name}'"),
            )
        )
    outputs = (
        [
            RequestedOutput(
                name=out.name,
                parameters=decode_parameters(out.parameters, f"requested output '{out.name}'"),
            )
            for out in message.outputs
        ]
        if message.outputs
        else None
    )
    return InferenceRequest(
        inputs=inputs,
        id=message.id or None,
        parameters=decode_parameters(message.parameters, "the request"),
        outputs=outputs or None,
    )


def encode_infer_response(response: InferenceResponse, *, raw: bool) -> pb.ModelInferResponse:
    """The ``ModelInferResponse`` for ``response``; ``raw`` selects raw_output_contents.

    FP16 has no typed contents field, so a response holding FP16 is always raw.
    """
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    encode_parameters(response.parameters, message.parameters)
    raw = raw or any(requires_raw(out.datatype) for out in response.outputs)
    for out in response.outputs:
        entry = message.outputs.add(name=out.name, datatype=out.datatype, shape=out.shape)
        encode_parameters(out.parameters, entry.parameters)
        if raw:
            message.raw_output_contents.append(array_to_raw(out.name, out.datatype, out.data))
        else:
            array_to_contents(out.name, out.datatype, out.data, entry.contents)
    return message


def encode_infer_request(
    model_name: str,
    request: InferenceRequest,
    *,
    model_version: str | None = None,
    raw: bool = False,
) -> pb.ModelInferRequest:
    """The ``ModelInferRequest`` a client sends for ``request`` (FP16 forces ``raw``)."""
    message = pb.ModelInferRequest(
        model_name=model_name, model_version=model_version or "", id=request.id or ""
    )
    encode_parameters(request.parameters, message.parameters)
    raw = raw or any(requires_raw(tensor.datatype) for tensor in request.inputs)
    for tensor in request.inputs:
        entry = message.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        encode_parameters(tensor.parameters, entry.parameters)
        if raw:
            message.raw_input_contents.append(
                array_to_raw(tensor.name, tensor.datatype, tensor.data)
            )
        else:
            array_to_contents(tensor.name, tensor.datatype, tensor.data, entry.contents)
    for requested in request.outputs or ():
        out = message.outputs.add(name=requested.name)
        encode_parameters(requested.parameters, out.parameters)
    return message


def decode_infer_response(message: pb.ModelInferResponse) -> InferenceResponse:
    """The ``InferenceResponse`` a ``ModelInferResponse`` carries."""
    raw = message.raw_output_contents
    if raw and len(raw) != len(message.outputs):
        raise InvalidInputError(
            f"The response has {len(message.outputs)} outputs but {len(raw)} "
            "raw_output_contents entries; a server must send one per output."
        )
    outputs: list[Tensor] = []
    for index, tensor in enumerate(message.outputs):
        name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
        if raw:
            data = raw_to_array(name, datatype, shape, raw[index], kind="Output")
        else:
            data = contents_to_array(name, datatype, shape, tensor.contents, kind="Output")
        outputs.append(
            Tensor(
                name=name,
                datatype=datatype,
                shape=shape,
                data=data,
                parameters=decode_parameters(tensor.parameters, f"output '{name}'"),
            )
        )
    return InferenceResponse(
        model_name=message.model_name,
        outputs=outputs,
        model_version=message.model_version or None,
        id=message.id or None,
        parameters=decode_parameters(message.parameters, "the response"),
    )
