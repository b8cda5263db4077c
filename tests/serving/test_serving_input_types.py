"""One input type per predictor: the same kind of object from every route of a real
server, from load_model(...).predict and from batch inference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import input_type_predictors as itp
import pandas as pd
import pytest

from shipyard.models import load_model, save_model
from shipyard.testing import ServerProcess, start_server

FRAME = pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 30.0]})
ARRAY = FRAME.to_numpy()
#: model name -> (predictor, input example, the kind code it must always receive)
MODELS: dict[str, tuple[type[Any], Any, int]] = {
    "frame-example": (itp.Reports, FRAME, 1),
    "array-example": (itp.Reports, ARRAY, 0),
    "declares-pandas": (itp.WantsPandas, ARRAY, 1),
    "declares-dict": (itp.WantsDict, FRAME, 2),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name: str = request.param
    predictor, example, _ = MODELS[name]
    path = tmp_path_factory.mktemp("input-types") / name
    # Columns named a and b for every model, so a table names them either way.
    signature_example = FRAME if name == "declares-pandas" else example
    save_model(None, path, predictor=predictor, input_example=signature_example)
    return path


@pytest.fixture(scope="module")
def served(saved: Path) -> Iterator[ServerProcess]:
    with start_server(saved, workers=1, grpc=True) as proc:
        yield proc


def _expected(saved: Path) -> int:
    return MODELS[saved.name][2]


ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "v2": (
        "/v2/models/{name}/infer",
        {
            "inputs": [
                {
                    "name": "input-0",
                    "datatype": "FP64",
                    "shape": [2, 2],
                    "data": ARRAY.ravel().tolist(),
                }
            ]
        },
    ),
    "v2-named-columns": (
        "/v2/models/{name}/infer",
        {
            "inputs": [
                {"name": "b", "datatype": "FP64", "shape": [2], "data": [10.0, 30.0]},
                {"name": "a", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]},
            ],
            "parameters": {"content_type": "pd"},
        },
    ),
    "invocations-split": (
        "/invocations",
        {"dataframe_split": {"columns": ["b", "a"], "data": [[10.0, 1.0], [30.0, 2.0]]}},
    ),
    "invocations-records": ("/invocations", {"dataframe_records": FRAME.to_dict("records")}),
    "invocations-inputs": ("/invocations", {"inputs": ARRAY.tolist()}),
    "invocations-instances": ("/invocations", {"instances": ARRAY.tolist()}),
    "kserve-v1": ("/v1/models/{name}:predict", {"instances": ARRAY.tolist()}),
    "seldon": ("/api/v0.1/predictions", {"data": {"ndarray": ARRAY.tolist()}}),
    "seldon-names": (
        "/api/v0.1/predictions",
        {"data": {"names": ["b", "a"], "ndarray": FRAME[["b", "a"]].to_numpy().tolist()}},
    ),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_route_gives_the_predictor_its_one_input_type(
    served: ServerProcess, saved: Path, route: str
) -> None:
    path, body = ROUTES[route]
    answer = httpx.post(served.url + path.format(name=saved.name), json=body, timeout=30)
    if route == "v2-named-columns" and saved.name == "array-example":
        # Saved from an array: no column names to match, so named tensors are refused.
        assert answer.status_code == 400
        assert "Unknown input(s) 'b', 'a'" in answer.json()["error"]
        return
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    if "data" in payload:
        values = payload["data"]["ndarray"]
    else:
        values = payload["outputs"][0]["data"] if "outputs" in payload else payload["predictions"]
    assert values == [_expected(saved)] * 2


def test_grpc_gives_the_same_input_type(served: ServerProcess, saved: Path) -> None:
    import grpc

    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input-0", datatype="FP64", shape=[2, 2],
        contents=pb.InferTensorContents(fp64_contents=ARRAY.ravel().tolist()),
    )  # fmt: skip
    request = pb.ModelInferRequest(model_name=saved.name, inputs=[tensor])
    with grpc.insecure_channel(served.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        reply = stub.ModelInfer(request, timeout=30)
    assert list(reply.outputs[0].contents.int64_contents) == [_expected(saved)] * 2


def test_model_predict_cli_gives_the_same_input_type(saved: Path) -> None:
    import json
    import subprocess
    import sys

    for data in (json.dumps(ARRAY.tolist()), json.dumps(FRAME[["b", "a"]].to_dict("records"))):
        done = subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", "model", "predict", str(saved),
             "--data", data],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["predictions"] == [_expected(saved)] * 2


@pytest.mark.parametrize("data", [ARRAY, FRAME, FRAME[["b", "a"]], ARRAY.tolist()], ids=repr)
def test_load_model_predict_gives_the_same_input_type(saved: Path, data: Any) -> None:
    model = load_model(saved)
    assert model.predict(data).tolist() == [_expected(saved)] * 2


def test_batch_gives_the_same_input_type(saved: Path, tmp_path: Path) -> None:
    from shipyard.batch import predict

    source = tmp_path / "in.csv"
    FRAME[["b", "a"]].to_csv(source, index=False)
    out = tmp_path / "out.csv"
    predict(str(saved), str(source), str(out))
    assert pd.read_csv(out)["prediction"].tolist() == [_expected(saved)] * 2


def test_columns_are_matched_by_name_from_python(tmp_path: Path) -> None:
    path = save_model(None, tmp_path / "sums", predictor=itp.Sums, input_example=FRAME)
    model = load_model(path)
    assert model.predict(FRAME).tolist() == [9.0, 28.0]
    assert model.predict(FRAME[["b", "a"]]).tolist() == [9.0, 28.0]
    # A plain array is taken in the signature's order.
    assert model.predict(ARRAY).tolist() == [9.0, 28.0]
