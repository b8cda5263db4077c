"""MLflow, KServe V1 and Seldon codecs: JSON without datatypes, typed by the signature."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import BadRequestError, InvalidInputError, UnsupportedMediaTypeError
from shipyard.models.manifest import Signature, TensorSpec
from shipyard.serving.codecs import kserve_v1, mlflow, seldon
from shipyard.serving.types import InferenceResponse, Tensor

SIG = Signature(inputs=[TensorSpec(name="features", datatype="FP32", shape=[-1, 3])])


def _response(data: np.ndarray, name: str = "output-0") -> InferenceResponse:
    return InferenceResponse(
        model_name="m",
        outputs=[Tensor(name=name, datatype="INT64", shape=list(data.shape), data=data)],
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-1000, 1000), min_size=3, max_size=3), min_size=1, max_size=5))
def test_instances_take_the_signature_dtype(rows: list[list[int]]) -> None:
    request = kserve_v1.decode_request(orjson.dumps({"instances": rows}), SIG)
    (tensor,) = request.inputs
    assert tensor.name == "features"
    assert tensor.datatype == "FP32"
    assert tensor.data.dtype == np.float32
    np.testing.assert_array_equal(tensor.data, np.asarray(rows, dtype=np.float32))


def test_instance_objects_become_named_inputs() -> None:
    body = orjson.dumps({"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]})
    request = kserve_v1.decode_request(body, None)
    by_name = {t.name: t for t in request.inputs}
    assert by_name["a"].data.tolist() == [1, 2]
    assert by_name["b"].datatype == "BYTES"
    assert by_name["b"].data.tolist() == [b"x", b"y"]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": []},
        {"instances": [[1, 2, 3], [4, 5]]},
        {"instances": [[1.5, "a", 2]]},
        {"inputs": {}},
    ],
)
def test_v1_refuses_bad_instances(body: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        kserve_v1.decode_request(orjson.dumps(body), SIG)


def test_v1_float_for_int_input_is_refused() -> None:
    sig = Signature(inputs=[TensorSpec(name="i", datatype="INT64", shape=[-1])])
    with pytest.raises(InvalidInputError, match="'i'"):
        kserve_v1.decode_request(b'{"instances": [1.5, 2]}', sig)


def test_v1_and_mlflow_answers() -> None:
    response = _response(np.array([1, 0]))
    assert orjson.loads(kserve_v1.encode_response(response)) == {"predictions": [1, 0]}
    assert orjson.loads(mlflow.encode_response(response)) == {"predictions": [1, 0]}


def test_mlflow_dataframe_split_and_records() -> None:
    split = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}
    frame = mlflow.decode_request(orjson.dumps(split), "application/json", None).dataframe
    assert frame is not None
    assert list(frame.columns) == ["a", "b"]
    assert frame.to_numpy().tolist() == [[1, 2], [3, 4]]
    records = {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    frame2 = mlflow.decode_request(orjson.dumps(records), "application/json", None).dataframe
    assert frame2 is not None
    assert frame2.to_numpy().tolist() == [[1, 2], [3, 4]]


def test_mlflow_csv_and_content_types() -> None:
    request = mlflow.decode_request(b"a,b\n1,2\n3,4\n", "text/csv; charset=utf-8", None)
    assert request.dataframe is not None
    assert request.dataframe.shape == (2, 2)
    with pytest.raises(UnsupportedMediaTypeError):
        mlflow.decode_request(b"a=1", "application/x-www-form-urlencoded", None)
    with pytest.raises(InvalidInputError):
        mlflow.decode_request(b"a,b\n", "text/csv", None)


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"instances": [[1]], "inputs": [[1]]}', b"[1]", b"{bad"],
)
def test_mlflow_refuses_ambiguous_bodies(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        mlflow.decode_request(body, "application/json", SIG)


def test_mlflow_dataframe_answer_is_records() -> None:
    response = InferenceResponse(
        model_name="m",
        outputs=[
            Tensor(name="p", datatype="FP64", shape=[2], data=np.array([0.5, 0.25])),
            Tensor(
                name="label", datatype="BYTES", shape=[2], data=np.array([b"a", b"b"], dtype=object)
            ),
        ],
        parameters={"content_type": "pd"},
    )
    assert orjson.loads(mlflow.encode_response(response)) == {
        "predictions": [{"p": 0.5, "label": "a"}, {"p": 0.25, "label": "b"}]
    }


def test_seldon_ndarray_and_tensor() -> None:
    request, form = seldon.decode_request(b'{"data": {"ndarray": [[1, 2, 3]]}}', SIG)
    assert form == "ndarray"
    assert request.inputs[0].data.dtype == np.float32
    answer = orjson.loads(seldon.encode_response(_response(np.array([[7]])), form))
    assert answer == {"data": {"names": ["output-0"], "ndarray": [[7]]}, "meta": {}}
    body = b'{"data": {"tensor": {"shape": [1, 3], "values": [1, 2, 3]}}}'
    request, form = seldon.decode_request(body, SIG)
    assert form == "tensor"
    assert request.inputs[0].shape == [1, 3]
    answer = orjson.loads(seldon.encode_response(_response(np.array([4, 5])), form))
    assert answer["data"]["tensor"] == {"shape": [2], "values": [4, 5]}
    with pytest.raises(InvalidInputError):
        seldon.decode_request(b'{"data": {"tensor": {"shape": [2, 2], "values": [1]}}}', SIG)
    with pytest.raises(BadRequestError):
        seldon.decode_request(b'{"data": {"strData": "x"}}', SIG)
