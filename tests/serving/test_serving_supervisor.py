"""The supervisor: worker replacement, graceful drain, the control socket, hot reload."""

from __future__ import annotations

import os
import signal
import stat
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.errors import ServiceError
from shipyard.serving.control import send_command
from shipyard.testing import start_server, wait_until

ONE_ROW = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 1, 1, 1]}]}


def _answer(http: httpx.Client, model: str) -> Any:
    response = http.post(f"/v2/models/{model}/infer", json=ONE_ROW)
    assert response.status_code == 200, response.text
    return response.json()["outputs"][0]["data"][0]


def test_killed_worker_is_replaced(models_dir: Path) -> None:
    with start_server(models_dir / "const1", workers=2) as server:
        status = server.status()
        pids = [w["pid"] for w in status["workers"]]
        assert len(set(pids)) == 2
        assert status["models"][0]["name"] == "const1"
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            now = server.status()
            current = [w["pid"] for w in now["workers"]]
            return victim not in current and bool(now["ready"])

        wait_until(replaced, "a replacement worker")
        assert pids[1] in [w["pid"] for w in server.status()["workers"]]
        # Fresh connections spread over both workers; all must answer.
        for _ in range(20):
            with httpx.Client(base_url=server.url, timeout=30) as http:
                assert _answer(http, "const1") == 1.0
        # After a reload, a replacement worker loads the new model, not the original one.
        assert server.command({"op": "reload", "model_uri": str(models_dir / "const2")})["ok"]
        victim = pids[1]
        os.kill(victim, signal.SIGKILL)
        wait_until(replaced, "a replacement worker after the reload")
        for _ in range(20):
            with httpx.Client(base_url=server.url, timeout=30) as http:
                assert _answer(http, "const1") == 2.0
        assert server.stop() == 0


def test_sigterm_drains_in_flight_requests(models_dir: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    server = start_server(models_dir / "slow", workers=1, env={"SERVING_TEST_MARKS": str(marks)})
    try:
        result: dict[str, Any] = {}

        def slow_request() -> None:
            body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2]}]}
            with httpx.Client(base_url=server.url, timeout=60) as http:
                response = http.post("/v2/models/slow/infer", json=body)
                result["status"] = response.status_code
                result["data"] = response.json()["outputs"][0]["data"]

        thread = threading.Thread(target=slow_request)
        thread.start()
        wait_until(lambda: any(marks.iterdir()), "the slow request to reach the predictor")
        server.process.send_signal(signal.SIGTERM)
        thread.join(60)
        assert result == {"status": 200, "data": [4.0]}
        assert server.process.wait(60) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/v2/health/live", timeout=5)
    finally:
        server.stop()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie of an exited worker still answers kill(0): check its state.
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat_line.split(")")[-1].split()[0] == "Z"


def test_control_socket_and_a_killed_supervisor(models_dir: Path) -> None:
    server = start_server(models_dir / "const1", workers=2)
    try:
        assert "Shipyard model server ready" in server.log()
        assert f"http://127.0.0.1:{server.http_port}" in server.log()
        mode = stat.S_IMODE(os.stat(server.control_socket).st_mode)
        assert mode == 0o600
        status = send_command(server.control_socket, {"op": "status"}, timeout=10)
        assert status["ok"] and status["ready"]
        assert status["pid"] == server.pid
        assert status["http_port"] == server.http_port
        assert [m["name"] for m in status["models"]] == ["const1"]
        unknown = send_command(server.control_socket, {"op": "dance"}, timeout=10)
        assert unknown["ok"] is False and "dance" in unknown["error"]
        missing = send_command(server.control_socket, {"op": "reload"}, timeout=10)
        assert missing["ok"] is False and "model_uri" in missing["error"]
        pids = [w["pid"] for w in status["workers"]]
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(30)
        # Orphaned workers see their channel close and stop by themselves.
        wait_until(lambda: all(_gone(p) for p in pids), "orphaned workers to exit")
        with pytest.raises(ServiceError, match="control socket"):
            send_command(server.control_socket, {"op": "status"}, timeout=5)
    finally:
        server.stop()


def test_hot_reload_without_failed_requests(models_dir: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "m").symlink_to(models_dir / "const1")
    server = start_server(args=["--model-repository", str(repository)], workers=2)
    seen: list[Any] = []
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v2/models/m/infer", json=ONE_ROW)
                    if response.status_code != 200:
                        failures.append(response.text)
                    else:
                        seen.append(response.json()["outputs"][0]["data"][0])
                except httpx.HTTPError as err:
                    failures.append(repr(err))

    client = threading.Thread(target=loop)
    try:
        client.start()
        wait_until(lambda: len(seen) > 10, "the client loop to get answers")
        answer = server.command({"op": "reload", "model_uri": str(models_dir / "const2")})
        assert answer["ok"], answer
        assert answer["models"][0]["uri"] == str(models_dir / "const2")
        count = len(seen)
        wait_until(lambda: len(seen) > count + 10, "answers after the reload")
        assert seen[-1] == 2.0
        refused = server.command(
            {"op": "reload", "model_uri": str(models_dir / "broken"), "name": "m"}
        )
        assert refused["ok"] is False
        assert "this model is broken" in refused["error"]
        count = len(seen)
        wait_until(lambda: len(seen) > count + 10, "answers after the refused reload")
    finally:
        stop.set()
        client.join(30)
        server.stop()
    assert failures == []
    assert seen[0] == 1.0 and seen[-1] == 2.0
    # The switch is one way: never back to the old model once the new one answered.
    first_new = seen.index(2.0)
    assert set(seen[first_new:]) == {2.0}


def test_a_model_that_cannot_start_fails_fast_with_the_reason(models_dir: Path) -> None:
    with pytest.raises(ServiceError, match="this model is broken"):
        start_server(models_dir / "broken", workers=1)


def test_grpc_is_served_on_the_shared_port(models_dir: Path) -> None:
    grpc = pytest.importorskip("grpc")
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

    with start_server(models_dir / "const1", workers=2, grpc=True) as server:
        assert server.status()["grpc_port"] == server.grpc_port
        assert f"gRPC:    127.0.0.1:{server.grpc_port}" in server.log()
        for _ in range(4):
            # A new channel each time: the kernel spreads them over both workers.
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
                assert stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live
                tensor = pb.ModelInferRequest.InferInputTensor(
                    name="x",
                    datatype="FP64",
                    shape=[1, 4],
                    contents=pb.InferTensorContents(fp64_contents=[0.0] * 4),
                )
                reply = stub.ModelInfer(
                    pb.ModelInferRequest(model_name="const1", inputs=[tensor]), timeout=30
                )
                assert list(reply.outputs[0].contents.fp64_contents) == [1.0]
