"""The protobuf <-> InferenceRequest/Response codec, checked against hand-built wire data."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from shipyard.errors import InvalidInputError
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc.codec import (
    decode_infer_request,
    decode_infer_response,
    encode_infer_request,
    encode_infer_response,
)
from shipyard.serving.types import InferenceRequest, InferenceResponse, RequestedOutput, Tensor


def _wire(message: pb.ModelInferRequest) -> pb.ModelInferRequest:
    """Serialize and parse again, as the message would cross the network."""
    parsed = pb.ModelInferRequest()
    parsed.ParseFromString(message.SerializeToString())
    return parsed


def _one_input(**tensor: Any) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(**tensor)
    return message


# (datatype, contents field, values, numpy dtype) for every typed-contents datatype.
CONTENTS_CASES = [
    ("BOOL", "bool_contents", [True, False, True, True], np.bool_),
    ("UINT8", "uint_contents", [0, 1, 200, 255], np.uint8),
    ("UINT16", "uint_contents", [0, 1, 60000, 65535], np.uint16),
    ("UINT32", "uint_contents", [0, 1, 2**31, 2**32 - 1], np.uint32),
    ("UINT64", "uint64_contents", [0, 1, 2**63, 2**64 - 1], np.uint64),
    ("INT8", "int_contents", [-128, -1, 0, 127], np.int8),
    ("INT16", "int_contents", [-32768, -1, 0, 32767], np.int16),
    ("INT32", "int_contents", [-(2**31), -1, 0, 2**31 - 1], np.int32),
    ("INT64", "int64_contents", [-(2**63), -1, 0, 2**63 - 1], np.int64),
    ("FP32", "fp32_contents", [-1.5, 0.0, 0.25, 3.0], np.float32),
    ("FP64", "fp64_contents", [-1e300, 0.0, 1e-300, 3.5], np.float64),
]


@pytest.mark.parametrize(("datatype", "field", "values", "dtype"), CONTENTS_CASES)
def test_contents_decode_to_arrays_of_the_datatype(
    datatype: str, field: str, values: list[Any], dtype: Any
) -> None:
    message = _one_input(name="x", datatype=datatype, shape=[2, 2])
    getattr(message.inputs[0].contents, field).extend(values)
    request = decode_infer_request(_wire(message))
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, [2, 2])
    assert tensor.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(tensor.data, np.array(values, dtype=dtype).reshape(2, 2))


# struct's standard sizes, written independently of the codec's numpy dtypes.
_STRUCT_CODES = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "FP32": "f",
    "FP64": "d",
}


@pytest.mark.parametrize(("datatype", "field", "values", "dtype"), CONTENTS_CASES)
def test_raw_little_endian_decodes_like_contents(
    datatype: str, field: str, values: list[Any], dtype: Any
) -> None:
    code = _STRUCT_CODES[datatype]
    raw = struct.pack("<" + code * len(values), *values)
    message = _one_input(name="x", datatype=datatype, shape=[4])
    message.raw_input_contents.append(raw)
    (tensor,) = decode_infer_request(_wire(message)).inputs
    np.testing.assert_array_equal(tensor.data, np.array(values, dtype=dtype))
    assert tensor.data.flags.writeable


def test_raw_fp16_and_bytes_with_length_prefixes() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="h", datatype="FP16", shape=[3])
    message.inputs.add(name="s", datatype="BYTES", shape=[3, 1])
    message.raw_input_contents.append(np.array([0.5, -2.0, 65504.0], dtype="<f2").tobytes())
    message.raw_input_contents.append(
        struct.pack("<I", 5) + b"hello" + struct.pack("<I", 0) + struct.pack("<I", 2) + b"\x00\xff"
    )
    half, strings = decode_infer_request(_wire(message)).inputs
    np.testing.assert_array_equal(half.data, np.array([0.5, -2.0, 65504.0], dtype=np.float16))
    assert strings.data.dtype == object
    assert strings.data.shape == (3, 1)
    assert strings.data.ravel().tolist() == [b"hello", b"", b"\x00\xff"]


def test_bytes_contents_and_request_fields() -> None:
    message = pb.ModelInferRequest(model_name="m", model_version="2", id="req-7")
    tensor = message.inputs.add(name="text", datatype="BYTES", shape=[2])
    tensor.contents.bytes_contents.extend([b"a", "é".encode()])
    tensor.parameters["content_type"].string_param = "str"
    message.parameters["priority"].int64_param = -3
    message.parameters["sample"].bool_param = True
    message.parameters["temperature"].double_param = 0.5
    message.parameters["seed"].uint64_param = 2**64 - 1
    wanted = message.outputs.add(name="label")
    wanted.parameters["top_k"].int64_param = 2
    request = decode_infer_request(_wire(message))
    assert request.id == "req-7"
    assert request.parameters == {
        "priority": -3,
        "sample": True,
        "temperature": 0.5,
        "seed": 2**64 - 1,
    }
    assert request.inputs[0].parameters == {"content_type": "str"}
    assert request.inputs[0].data.tolist() == [b"a", "é".encode()]
    assert request.outputs == [RequestedOutput(name="label", parameters={"top_k": 2})]


def test_absent_id_and_outputs_decode_to_none() -> None:
    message = _one_input(name="x", datatype="FP32", shape=[1])
    message.inputs[0].contents.fp32_contents.append(1.0)
    request = decode_infer_request(_wire(message))
    assert request.id is None
    assert request.outputs is None
    assert request.parameters == {}


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (
            lambda m: m.inputs[0].contents.fp32_contents.extend([1.0, 2.0, 3.0]),
            ["'x'", "shape [2, 2]", "4 elements", "holds 3"],
        ),
        (
            lambda m: m.inputs[0].contents.int_contents.extend([1, 2, 3, 4]),
            ["'x'", "contents.fp32_contents", "contents.int_contents"],
        ),
        (lambda m: m.raw_input_contents.append(b"\x00" * 12), ["'x'", "16 bytes", "12 bytes"]),
        (
            lambda m: (
                m.raw_input_contents.append(b"\x00" * 16),
                m.inputs[0].contents.fp32_contents.extend([1.0] * 4),
            ),
            ["'x'", "raw_input_contents"],
        ),
    ],
    ids=["too-few-values", "wrong-contents-field", "raw-size", "raw-and-contents"],
)
def test_data_that_does_not_fit_names_the_input(build: Any, words: list[str]) -> None:
    message = _one_input(name="x", datatype="FP32", shape=[2, 2])
    build(message)
    with pytest.raises(InvalidInputError) as caught:
        decode_infer_request(_wire(message))
    for word in words:
        assert word in str(caught.value)


def test_raw_entry_count_must_match_inputs() -> None:
    message = _one_input(name="x", datatype="FP32", shape=[1])
    message.raw_input_contents.extend([b"\x00" * 4, b"\x00" * 4])
    with pytest.raises(InvalidInputError, match="1 inputs but 2 raw_input_contents"):
        decode_infer_request(message)


@pytest.mark.parametrize(
    ("tensor", "raw", "match"),
    [
        ({"datatype": "FP8", "shape": [1]}, None, "'x' has datatype 'FP8'"),
        ({"datatype": "FP16", "shape": [1]}, None, "'x' is FP16.*raw_input_contents"),
        ({"datatype": "INT32", "shape": [-1]}, None, r"'x' has shape \[-1\]"),
        ({"datatype": "BYTES", "shape": [1]}, b"\x05\x00\x00\x00abc", "claims 5 bytes"),
        ({"datatype": "BYTES", "shape": [1]}, b"\x01\x00", "inside a 4-byte length prefix"),
        ({"datatype": "BYTES", "shape": [2]}, b"\x01\x00\x00\x00a", "holds 2 elements.*holds 1"),
    ],
)
def test_malformed_tensors_are_invalid_input(
    tensor: dict[str, Any], raw: bytes | None, match: str
) -> None:
    message = _one_input(name="x", **tensor)
    if raw is not None:
        message.raw_input_contents.append(raw)
    with pytest.raises(InvalidInputError, match=match):
        decode_infer_request(_wire(message))


@pytest.mark.parametrize(("datatype", "value"), [("INT8", 128), ("UINT8", 256), ("INT16", -40000)])
def test_values_outside_a_narrow_int_type_are_refused(datatype: str, value: int) -> None:
    message = _one_input(name="x", datatype=datatype, shape=[1])
    field = "uint_contents" if datatype.startswith("U") else "int_contents"
    getattr(message.inputs[0].contents, field).append(value)
    with pytest.raises(InvalidInputError, match=f"'x' \\({datatype}\\) holds values outside"):
        decode_infer_request(_wire(message))


def test_a_parameter_without_a_value_is_refused() -> None:
    message = _one_input(name="x", datatype="FP32", shape=[0])
    message.parameters["empty"].CopyFrom(pb.InferParameter())
    with pytest.raises(InvalidInputError, match="Parameter 'empty' of the request has no value"):
        decode_infer_request(_wire(message))


def _response(*outputs: Tensor, **fields: Any) -> InferenceResponse:
    return InferenceResponse(model_name="m", outputs=list(outputs), **fields)


def test_response_uses_contents_unless_raw_is_asked() -> None:
    out = Tensor("proba", "FP64", [1, 2], np.array([[0.25, 0.75]]))
    typed = encode_infer_response(_response(out, model_version="1", id="r"), raw=False)
    assert list(typed.raw_output_contents) == []
    assert list(typed.outputs[0].contents.fp64_contents) == [0.25, 0.75]
    assert (typed.model_name, typed.model_version, typed.id) == ("m", "1", "r")
    assert list(typed.outputs[0].shape) == [1, 2]

    raw = encode_infer_response(_response(out), raw=True)
    assert not raw.outputs[0].HasField("contents")
    assert list(raw.raw_output_contents) == [struct.pack("<2d", 0.25, 0.75)]
    assert raw.model_version == ""
    assert raw.id == ""


def test_fp16_output_switches_the_whole_response_to_raw() -> None:
    half = Tensor("h", "FP16", [2], np.array([1.0, 2.0], dtype=np.float16))
    ints = Tensor("i", "INT32", [1], np.array([7], dtype=np.int32))
    message = encode_infer_response(_response(half, ints), raw=False)
    assert list(message.raw_output_contents) == [
        np.array([1.0, 2.0], dtype="<f2").tobytes(),
        struct.pack("<i", 7),
    ]


def test_string_labels_become_bytes_in_both_forms() -> None:
    labels = Tensor("label", "BYTES", [2], np.array(["cat", "dög"]))
    typed = encode_infer_response(_response(labels), raw=False)
    assert list(typed.outputs[0].contents.bytes_contents) == [b"cat", "dög".encode()]
    raw = encode_infer_response(_response(labels), raw=True)
    dog = "dög".encode()
    assert raw.raw_output_contents[0] == (
        struct.pack("<I", 3) + b"cat" + struct.pack("<I", len(dog)) + dog
    )


def test_response_parameters_of_every_kind() -> None:
    params = {
        "flag": np.bool_(True),
        "count": np.int64(3),
        "huge": 2**64 - 2,
        "ratio": np.float32(0.5),
        "note": "ok",
        "extra": {"a": [1, 2]},
    }
    message = encode_infer_response(_response(parameters=params), raw=False)
    got = {key: message.parameters[key].WhichOneof("parameter_choice") for key in params}
    assert got == {
        "flag": "bool_param",
        "count": "int64_param",
        "huge": "uint64_param",
        "ratio": "double_param",
        "note": "string_param",
        "extra": "string_param",
    }
    assert message.parameters["extra"].string_param == '{"a": [1, 2]}'
    decoded = decode_infer_response(pb.ModelInferResponse.FromString(message.SerializeToString()))
    assert decoded.parameters == {
        "flag": True,
        "count": 3,
        "huge": 2**64 - 2,
        "ratio": 0.5,
        "note": "ok",
        "extra": '{"a": [1, 2]}',
    }


def test_client_encoding_matches_the_spec_layout() -> None:
    request = InferenceRequest(
        inputs=[Tensor("x", "FP32", [1, 2], np.array([[1.0, 2.0]], dtype=np.float32))],
        id="abc",
        outputs=[RequestedOutput("y")],
    )
    raw = encode_infer_request("model", request, model_version="3", raw=True)
    assert (raw.model_name, raw.model_version, raw.id) == ("model", "3", "abc")
    assert list(raw.raw_input_contents) == [struct.pack("<2f", 1.0, 2.0)]
    assert [o.name for o in raw.outputs] == ["y"]
    typed = encode_infer_request("model", request)
    assert list(typed.inputs[0].contents.fp32_contents) == [1.0, 2.0]
    assert list(typed.raw_input_contents) == []
