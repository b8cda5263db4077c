"""Open Inference Protocol protobuf messages <-> the protocol-neutral inference types.

The server side decodes a ``ModelInferRequest`` and encodes a ``ModelInferResponse``;
the client side (tests, benchmarks, users' Python clients) does the opposite. Tensor
data travels either as typed ``contents`` or as little-endian ``raw_*_contents``; a
response uses raw bytes when its request did, as Triton does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

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

if TYPE_CHECKING:
    from google.protobuf.internal.containers import (
        RepeatedCompositeFieldContainer,
        RepeatedScalarFieldContainer,
    )

    _WireTensor: TypeAlias = (
        pb.ModelInferRequest.InferInputTensor | pb.ModelInferResponse.InferOutputTensor
    )
    #: A message's inputs or outputs.
    _WireTensors: TypeAlias = (
        RepeatedCompositeFieldContainer[pb.ModelInferRequest.InferInputTensor]
        | RepeatedCompositeFieldContainer[pb.ModelInferResponse.InferOutputTensor]
    )

__all__ = [
    "decode_infer_request",
    "decode_infer_response",
    "encode_infer_request",
    "encode_infer_response",
]


def decode_infer_request(message: pb.ModelInferRequest) -> InferenceRequest:
    """The ``InferenceRequest`` a ``ModelInferRequest`` carries (model name/version aside)."""
    inputs = _decode_tensors(message.inputs, message.raw_input_contents, "input")
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
    _encode_tensors(response.outputs, message.outputs, message.raw_output_contents, raw)
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
    _encode_tensors(request.inputs, message.inputs, message.raw_input_contents, raw)
    for requested in request.outputs or ():
        out = message.outputs.add(name=requested.name)
        encode_parameters(requested.parameters, out.parameters)
    return message


def decode_infer_response(message: pb.ModelInferResponse) -> InferenceResponse:
    """The ``InferenceResponse`` a ``ModelInferResponse`` carries."""
    outputs = _decode_tensors(message.outputs, message.raw_output_contents, "output")
    return InferenceResponse(
        model_name=message.model_name,
        outputs=outputs,
        model_version=message.model_version or None,
        id=message.id or None,
        parameters=decode_parameters(message.parameters, "the response"),
    )


def _decode_tensors(
    tensors: Sequence[_WireTensor], raw: Sequence[bytes], role: str
) -> list[Tensor]:
    """The tensors of a message, each from its typed ``contents`` or, when the message has
    ``raw_*_contents``, from the raw entry at its index. ``role`` ("input" or "output")
    names them in errors. An input may not mix the two forms (a server refuses
    it); a response's contents are ignored when it is raw."""
    if raw and len(raw) != len(tensors):
        message, fix = (
            ("request", "send one raw entry per input, in the same order.")
            if role == "input"
            else ("response", "a server must send one per output.")
        )
        raise InvalidInputError(
            f"The {message} has {len(tensors)} {role}s but {len(raw)} raw_{role}_contents "
            f"entries; {fix}"
        )
    kind = role.capitalize()
    decoded: list[Tensor] = []
    for index, tensor in enumerate(tensors):
        name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
        if not raw:
            data = contents_to_array(name, datatype, shape, tensor.contents, kind=kind)
        elif role == "input" and tensor.HasField("contents"):
            raise InvalidInputError(
                f"Input '{name}' sets contents while the request uses "
                "raw_input_contents; a request uses one form for all inputs."
            )
        else:
            data = raw_to_array(name, datatype, shape, raw[index], kind=kind)
        decoded.append(
            Tensor(
                name=name,
                datatype=datatype,
                shape=shape,
                data=data,
                parameters=decode_parameters(tensor.parameters, f"{role} '{name}'"),
            )
        )
    return decoded


def _encode_tensors(
    tensors: Sequence[Tensor],
    entries: _WireTensors,
    raw_contents: RepeatedScalarFieldContainer[bytes],
    raw: bool,
) -> None:
    """Add ``tensors`` to a message's ``entries`` (its inputs or outputs), their data as
    typed contents, or as ``raw_contents`` when ``raw`` (forced by FP16, which has no
    typed field)."""
    raw = raw or any(requires_raw(tensor.datatype) for tensor in tensors)
    for tensor in tensors:
        entry = entries.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        encode_parameters(tensor.parameters, entry.parameters)
        if raw:
            raw_contents.append(array_to_raw(tensor.name, tensor.datatype, tensor.data))
        else:
            array_to_contents(tensor.name, tensor.datatype, tensor.data, entry.contents)
