"""A model saved with text examples gets ``str`` over every protocol, as it does from
``load_model``: the same predictor gives the same answers in and out of the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import serving_predictors as sp

from shipyard.models import load_model, save_model
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.testing import ServerProcess, start_server

WORDS = ["hi", "there"]


@pytest.fixture(scope="module")
def shout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    example = np.array(["ab", "cde"], dtype=object)
    return save_model(None, root / "shout", predictor=sp.Shout, input_example=example)


@pytest.fixture(scope="module")
def server(shout: Path) -> Iterator[ServerProcess]:
    # --expose-errors: the predictor's own message reaches the client (development).
    with start_server(shout, workers=1, grpc=True, args=["--expose-errors"]) as process:
        yield process


def test_every_protocol_answers_like_load_model(shout: Path, server: ServerProcess) -> None:
    local = load_model(shout).predict(np.array(WORDS, dtype=object)).tolist()
    assert local == [2, 5]
    v2 = {"inputs": [{"name": "t", "shape": [2], "datatype": "BYTES", "data": WORDS}]}
    answers = {
        "v2": httpx.post(f"{server.url}/v2/models/shout/infer", json=v2, timeout=60).json()[
            "outputs"
        ][0]["data"],
        "mlflow": httpx.post(
            f"{server.url}/invocations", json={"inputs": WORDS}, timeout=60
        ).json()["predictions"],
        "v1": httpx.post(
            f"{server.url}/v1/models/shout:predict", json={"instances": WORDS}, timeout=60
        ).json()["predictions"],
    }
    request = pb.ModelInferRequest(model_name="shout")
    tensor = request.inputs.add(name="t", datatype="BYTES", shape=[2])
    tensor.contents.bytes_contents.extend(w.encode() for w in WORDS)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub: Any = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        answers["grpc"] = list(
            stub.ModelInfer(request, timeout=60).outputs[0].contents.int64_contents
        )
    assert answers == dict.fromkeys(answers, local)


def test_the_predictors_own_refusal_holds_in_the_server(server: ServerProcess) -> None:
    v2 = {"inputs": [{"name": "t", "shape": [2], "datatype": "BYTES", "data": ["hi", "boom"]}]}
    answer = httpx.post(f"{server.url}/v2/models/shout/infer", json=v2, timeout=60)
    assert answer.status_code == 500
    assert "the model refuses BOOM" in answer.json()["error"]
