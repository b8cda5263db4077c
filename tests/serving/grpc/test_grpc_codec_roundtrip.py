"""Property tests: any tensor survives client encode -> wire -> server decode, and back.

No deadline and no too-slow health check: the test machine is shared and noisy, and
these tests are about values, not speed.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc.codec import (
    decode_infer_request,
    decode_infer_response,
    encode_infer_request,
    encode_infer_response,
)
from shipyard.serving.types import InferenceRequest, InferenceResponse, RequestedOutput, Tensor

NUMERIC = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
param_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=10),
)
params = st.dictionaries(st.text(max_size=6), param_values, max_size=3)


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    datatype = draw(st.sampled_from([*NUMERIC, "BYTES"]))
    shape = draw(shapes)
    if datatype == "BYTES":
        flat = draw(hnp.arrays(object, (int(np.prod(shape)),), elements=st.binary(max_size=12)))
        data = flat.reshape(shape)
    else:
        data = draw(hnp.arrays(NUMERIC[datatype], shape))
    return Tensor(draw(names), datatype, list(shape), data, draw(params))


def _assert_same_tensors(got: list[Tensor], sent: list[Tensor]) -> None:
    assert [(t.name, t.datatype, t.shape, t.parameters) for t in got] == [
        (t.name, t.datatype, t.shape, t.parameters) for t in sent
    ]
    for a, b in zip(got, sent, strict=True):
        assert a.data.shape == b.data.shape
        assert a.data.dtype == b.data.dtype
        # assert_array_equal treats NaN == NaN, which is what a faithful codec preserves.
        np.testing.assert_array_equal(a.data, b.data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs=st.lists(tensors(), max_size=3),
    raw=st.booleans(),
    request_id=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
    parameters=params,
    outputs=st.one_of(st.none(), st.lists(st.builds(RequestedOutput, names, params), min_size=1)),
)
def test_request_round_trip(
    inputs: list[Tensor],
    raw: bool,
    request_id: str | None,
    parameters: dict[str, Any],
    outputs: list[RequestedOutput] | None,
) -> None:
    sent = InferenceRequest(inputs=inputs, id=request_id, parameters=parameters, outputs=outputs)
    message = encode_infer_request("model", sent, raw=raw)
    wire = pb.ModelInferRequest.FromString(message.SerializeToString())
    got = decode_infer_request(wire)
    _assert_same_tensors(got.inputs, sent.inputs)
    assert (got.id, got.parameters, got.outputs) == (request_id, parameters, outputs)
    has_fp16 = any(t.datatype == "FP16" for t in inputs)
    assert bool(wire.raw_input_contents) == ((raw or has_fp16) and bool(inputs))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outputs=st.lists(tensors(), max_size=3), raw=st.booleans(), parameters=params)
def test_response_round_trip(outputs: list[Tensor], raw: bool, parameters: dict[str, Any]) -> None:
    sent = InferenceResponse("m", outputs, model_version="7", id="x", parameters=parameters)
    message = encode_infer_response(sent, raw=raw)
    got = decode_infer_response(pb.ModelInferResponse.FromString(message.SerializeToString()))
    _assert_same_tensors(got.outputs, sent.outputs)
    assert (got.model_name, got.model_version, got.id, got.parameters) == (
        "m",
        "7",
        "x",
        parameters,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.binary(max_size=20), max_size=6))
def test_raw_bytes_are_length_prefixed_per_element(items: list[bytes]) -> None:
    data = np.empty(len(items), dtype=object)
    data[:] = items
    message = encode_infer_response(
        InferenceResponse("m", [Tensor("b", "BYTES", [len(items)], data)]), raw=True
    )
    expected = b"".join(struct.pack("<I", len(item)) + item for item in items)
    assert message.raw_output_contents[0] == expected
