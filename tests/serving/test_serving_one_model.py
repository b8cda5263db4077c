"""A real server with one model and a small --max-body-size: the limit holds on gRPC as
on REST, and MLflow/Seldon requests, which name no model, are counted under that one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.testing import ServerProcess, metric_value, start_server

#: Small enough that 200 rows (6,400 raw bytes) are over it and 2 rows are well under.
LIMIT = 4000
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def one(models_dir: Path) -> Iterator[ServerProcess]:
    args = ["--max-body-size", str(LIMIT)]
    with start_server(models_dir / "forest", workers=1, grpc=True, args=args) as process:
        yield process


def _infer(rows: np.ndarray[Any, Any]) -> Any:
    request = pb.ModelInferRequest(model_name="forest")
    request.inputs.add(name="input-0", datatype="FP64", shape=list(rows.shape))
    request.raw_input_contents.append(rows.astype("<f8").tobytes())
    return request


def test_grpc_messages_over_max_body_size_are_refused(one: ServerProcess) -> None:
    rows = np.random.default_rng(3).normal(size=(200, 4))
    with grpc.insecure_channel(one.grpc_target) as channel:
        stub: Any = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(_infer(rows), timeout=60)
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        # The server keeps serving, and a small request still passes.
        answer = stub.ModelInfer(_infer(rows[:2]), timeout=60)
        assert list(answer.outputs[0].shape) == [2]


def _series(text: str, labels: str) -> tuple[float, float]:
    return (
        metric_value(text, f"shipyard_requests_total{{{labels}}}"),
        metric_value(text, f"shipyard_request_errors_total{{{labels}}}"),
    )


def test_mlflow_and_seldon_errors_carry_the_served_model(one: ServerProcess) -> None:
    big = b"[" + b"1," * LIMIT + b"1]"
    sent = [
        ("/invocations", b"x", {"content-type": "image/png"}, "mlflow", 415),
        ("/invocations", b"{nope", JSON, "mlflow", 400),
        ("/invocations", big, JSON, "mlflow", 413),
        ("/api/v0.1/predictions", b"{nope", JSON, "seldon", 400),
    ]
    for path, body, headers, _, status in sent:
        # A fresh connection each time: a 413 closes its connection.
        answer = httpx.post(f"{one.url}{path}", content=body, headers=headers, timeout=60)
        assert answer.status_code == status, answer.text
    wanted = [f'model="forest",protocol="{p}",status="{s}"' for _, _, _, p, s in sent]
    for _ in range(200):
        text = httpx.get(f"{one.url}/metrics", timeout=60).text
        counts = {labels: _series(text, labels) for labels in wanted}
        if all(total >= 1 and errors >= 1 for total, errors in counts.values()):
            break
        time.sleep(0.05)
    assert all(c == (1.0, 1.0) for c in counts.values()), counts
