"""Open Inference Protocol JSON and binary codecs: round trips and refusals."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.errors import BadRequestError, InvalidInputError
from shipyard.serving.codecs import v2
from shipyard.serving.codecs._tensors import DATATYPE_TO_NUMPY
from shipyard.serving.types import InferenceResponse, RequestedOutput, Tensor

NUMERIC = [k for k in DATATYPE_TO_NUMPY if k != "BYTES"]
WIDTHS: dict[int, Literal[16, 32, 64]] = {2: 16, 4: 32, 8: 64}
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    datatype = draw(st.sampled_from([*NUMERIC, "BYTES"]))
    shape = draw(shapes)
    if datatype == "BYTES":
        size = int(np.prod(shape))
        items = draw(st.lists(st.binary(max_size=8), min_size=size, max_size=size))
        data = np.empty(size, dtype=object)
        data[:] = items
        data = data.reshape(shape)
    else:
        dtype = DATATYPE_TO_NUMPY[datatype]
        elements = None
        if dtype.kind == "f":
            # JSON has no NaN/Infinity; the binary form carries them, tested separately.
            elements = st.floats(
                allow_nan=False, allow_infinity=False, width=WIDTHS[dtype.itemsize]
            )
        data = draw(hnp.arrays(dtype, shape, elements=elements))
    name = draw(st.text(min_size=1, max_size=6))
    return Tensor(name=name, datatype=datatype, shape=list(shape), data=data)


def _same(a: Tensor, b: Tensor) -> None:
    assert a.name == b.name
    assert a.datatype == b.datatype
    assert a.shape == b.shape
    assert a.data.shape == tuple(b.shape)
    if a.datatype == "BYTES":
        assert a.data.tolist() == b.data.tolist()
    else:
        assert b.data.dtype == DATATYPE_TO_NUMPY[a.datatype]
        np.testing.assert_array_equal(a.data, b.data)


def _text_safe(tensors: list[Tensor]) -> None:
    """Make every BYTES tensor valid UTF-8 in place (what JSON text can carry)."""
    for t in tensors:
        if t.datatype == "BYTES" and t.data.size:
            t.data = np.vectorize(lambda b: b.decode("utf-8", "replace").encode(), otypes=[object])(
                t.data
            )


@settings(max_examples=150, deadline=None)
@given(st.lists(tensors(), min_size=1, max_size=3, unique_by=lambda t: t.name), st.booleans())
def test_request_round_trip(inputs: list[Tensor], binary: bool) -> None:
    # Text BYTES must be valid UTF-8 to survive JSON; binary carries any bytes.
    if not binary:
        _text_safe(inputs)
    body, header = v2.encode_request(inputs, request_id="r1", binary=binary)
    decoded = v2.decode_request(body, header)
    assert decoded.id == "r1"
    assert len(decoded.inputs) == len(inputs)
    for a, b in zip(inputs, decoded.inputs, strict=True):
        _same(a, b)


@settings(max_examples=100, deadline=None)
@given(st.lists(tensors(), min_size=1, max_size=3, unique_by=lambda t: t.name), st.booleans())
def test_response_round_trip(outputs: list[Tensor], binary: bool) -> None:
    if not binary:
        _text_safe(outputs)
    response = InferenceResponse(model_name="m", model_version="3", id="x", outputs=outputs)
    body, header = v2.encode_response(response, binary)
    back = v2.decode_response(body, header)
    assert (back.model_name, back.model_version, back.id) == ("m", "3", "x")
    for a, b in zip(outputs, back.outputs, strict=True):
        _same(a, b)


def test_binary_carries_nan_and_infinity() -> None:
    data = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32)
    t = Tensor(name="x", datatype="FP32", shape=[4], data=data)
    body, header = v2.encode_request([t], binary=True)
    back = v2.decode_request(body, header).inputs[0].data
    np.testing.assert_array_equal(back, data)


def test_outputs_and_parameters_are_decoded() -> None:
    body = orjson.dumps(
        {
            "id": 7,
            "parameters": {"binary_data_output": True},
            "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]}],
            "outputs": [{"name": "p", "parameters": {"binary_data": True}}],
        }
    )
    request = v2.decode_request(body)
    assert request.id == "7"
    assert request.outputs == [RequestedOutput(name="p", parameters={"binary_data": True})]
    assert v2.binary_outputs_wanted(request) is True


def _body(**tensor: Any) -> bytes:
    base = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}
    base.update(tensor)
    return orjson.dumps({"inputs": [base]})


@pytest.mark.parametrize(
    ("tensor", "fragment"),
    [
        ({"shape": [3]}, "needs 3 elements"),
        ({"datatype": "INT32", "data": [1.5, 2]}, "floating-point"),
        ({"datatype": "UINT8", "data": [300, 1]}, "out of range"),
        ({"datatype": "FP32", "data": ["a", "b"]}, "string"),
        ({"datatype": "FLOAT"}, "datatype"),
        ({"data": [[1.0], [2.0, 3.0]]}, "regular array"),
        ({"shape": "2"}, "shape"),
        ({"data": None, "shape": [1]}, "x"),
        ({"datatype": "BYTES", "data": [1, 2]}, "strings"),
        ({"datatype": "BOOL", "data": [1, 0]}, "integer"),
    ],
)
def test_bad_tensors_name_the_input(tensor: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        v2.decode_request(_body(**tensor))
    assert "'x'" in str(info.value)
    assert fragment in str(info.value)


def test_a_json_null_in_a_float_tensor_is_nan() -> None:
    # JSON has no NaN: null is how a V2 client sends a missing value (as MLflow reads it).
    for datatype in ("FP16", "FP32", "FP64"):
        data = (
            v2.decode_request(_body(datatype=datatype, shape=[2, 1], data=[[None], [2.0]]))
            .inputs[0]
            .data
        )
        assert data.dtype == DATATYPE_TO_NUMPY[datatype]
        np.testing.assert_array_equal(data, np.array([[np.nan], [2.0]], dtype=data.dtype))
    one = v2.decode_request(_body(shape=[1], data=[None])).inputs[0].data
    assert one.dtype == np.float32 and np.isnan(one).all()


@pytest.mark.parametrize(
    ("datatype", "data"), [("INT64", [None, 1]), ("BOOL", [None, True]), ("FP32", [None, "a"])]
)
def test_a_null_where_no_nan_exists_is_refused(datatype: str, data: list[Any]) -> None:
    with pytest.raises(InvalidInputError, match="'x'"):
        v2.decode_request(_body(datatype=datatype, data=data))


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'{"inputs": []}', b'{"inputs": {}}', b'"x"', b"\xff"]
)
def test_malformed_requests(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        v2.decode_request(body)


def test_binary_size_must_fit() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    with pytest.raises(InvalidInputError, match="binary_data_size"):
        v2.decode_request(header + b"\0" * 4, len(header))
    with pytest.raises(BadRequestError, match="no input claims"):
        v2.decode_request(header + b"\0" * 12, len(header))
