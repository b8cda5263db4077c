"""Overload: requests whose client left or whose deadline passed are never predicted, a
full queue sheds at once with 503 + Retry-After, readiness says no while saturated, and
/metrics counts what each client really got."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.testing import ServerProcess, start_server, wait_until

TIMEOUT = 4.0  # the server's --request-timeout
QUEUE = 6  # the server's --max-queue


def _row(value: float) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [value]}]}


def _post(server: ServerProcess, value: float, timeout: float) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=timeout) as http:
        return http.post("/v2/models/gated/infer", json=_row(value))


def _predicted(marks: Path) -> list[float]:
    path = marks / "predicted"
    return [float(v) for v in path.read_text().split()] if path.exists() else []


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _metrics(server: ServerProcess) -> str:
    return httpx.get(f"{server.url}/metrics", timeout=30).text


def _in_background(target: Any, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_abandoned_and_late_requests_are_never_predicted(models_dir: Path, tmp_path: Path) -> None:
    grpc = pytest.importorskip("grpc")
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

    def infer_request(value: float) -> Any:
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="x",
            datatype="FP64",
            shape=[1, 1],
            contents=pb.InferTensorContents(fp64_contents=[value]),
        )
        return pb.ModelInferRequest(model_name="gated", inputs=[tensor])

    marks = tmp_path / "marks"
    marks.mkdir()
    args = ["--request-timeout", str(TIMEOUT), "--max-queue", str(QUEUE)]
    env = {"SERVING_TEST_MARKS": str(marks)}
    with start_server(models_dir / "gated", workers=1, grpc=True, args=args, env=env) as server:
        # The model is busy: this call blocks in predict until the test opens the gate.
        blocker = _in_background(_post, server, -1.0, 60.0)
        wait_until(lambda: _predicted(marks) == [-1.0], "the blocking call to reach predict")

        # Clients that give up while their request is queued (HTTP: they disconnect;
        # gRPC: the deadline passes and the client resets the stream).
        for value in (1.0, 2.0, 3.0, 4.0):
            with pytest.raises(httpx.TimeoutException):
                _post(server, value, 0.3)
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            for value in (5.0, 6.0):
                with pytest.raises(grpc.RpcError) as late:
                    stub.ModelInfer(infer_request(value), timeout=0.3)
                assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_until(
            lambda: _counter(_metrics(server), "shipyard_requests_unserved_total") >= 6,
            "the abandoned requests to be dropped",
        )

        # A fresh request behind the busy model: 504 at the deadline, the client's own
        # bound being the deadline plus one second.
        late_answer = _post(server, 20.0, TIMEOUT + 1)
        assert late_answer.status_code == 504, late_answer.text
        assert "request timeout" in late_answer.json()["error"]

        # Saturation: QUEUE requests in flight make readiness say no; one more is shed.
        waiting = [_in_background(_post, server, 30.0 + i, 60.0) for i in range(QUEUE)]
        wait_until(
            lambda: httpx.get(f"{server.url}/v2/health/ready", timeout=30).status_code == 503,
            "readiness to report the saturated model",
        )
        shed = _post(server, 40.0, 30.0)
        assert shed.status_code == 503, shed.text
        assert shed.headers["retry-after"] == "1"
        assert "--max-queue" in shed.json()["error"]
        for thread in waiting:
            thread.join(60)

        # Open the gate: the blocked batch finishes; nothing queued meanwhile runs.
        (marks / "open").write_text("")
        blocker.join(60)
        fresh = _post(server, 50.0, 30.0)
        assert fresh.status_code == 200, fresh.text
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=30).status_code == 200
        assert _predicted(marks) == [-1.0, 50.0]

        text = _metrics(server)
        unserved = "shipyard_requests_unserved_total"
        assert _counter(text, unserved, model="gated", reason="cancelled", protocol="v2") == 4
        assert _counter(text, unserved, model="gated", reason="shed") == 1
        # The blocker, the fresh late request and the QUEUE waiting ones timed out on
        # HTTP; the two gRPC calls ended by their client's deadline (either way).
        timed_out = _counter(text, unserved, model="gated", reason="timeout")
        cancelled_grpc = _counter(text, unserved, reason="cancelled", protocol="grpc")
        assert timed_out + cancelled_grpc == QUEUE + 2 + 2
        total = "shipyard_requests_total"
        assert _counter(text, total, model="gated", status="200") == 1
        assert _counter(text, total, model="gated", status="503") == 1
        assert _counter(text, total, model="gated", protocol="v2", status="504") == QUEUE + 2


def test_model_names_are_percent_decoded_once(client: httpx.Client) -> None:
    # "%256d" is "%6d" once decoded: a model of that name, not "m" (decoded twice).
    response = client.post("/v2/models/%2566orest/infer", json=_row(1.0))
    assert response.status_code == 404
    assert "'%66orest'" in response.json()["error"]


def test_fixed_responses_carry_content_length(server: ServerProcess) -> None:
    # An HTTP/1.0 client cannot read chunked encoding: every answer has Content-Length.
    import socket

    with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert length is not None and int(length.group(1)) == len(body)
    assert body == b'{"live":true}'
