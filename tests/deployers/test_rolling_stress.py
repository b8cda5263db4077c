"""A rolling replacement under stress: many short connections, keep-alive clients and
gRPC calls while the worker count changes back and forth (1 -> 2 -> 1 -> 2). Not one
request may fail: a connection the kernel queued on a listening socket of the old server
must be accepted by someone, and a keep-alive connection must not be closed under a
request the client is sending."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np

from shipyard.deployers.local import LocalModelDeployer, LocalModelServer
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

from .conftest import Models

#: Worker counts the server goes through after starting with 1.
_SWITCHES = (2, 1, 2)
_MAX_REQUESTS = 200_000  # a bound on each client, should a switch hang


class _Loop(threading.Thread):
    """Calls ``once`` until stopped, counting successes and keeping every failure."""

    def __init__(self, once: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.once = once
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        for _ in range(_MAX_REQUESTS):
            if self.stop.is_set():
                return
            try:
                self.once()
            except Exception as err:  # every failure is kept and reported
                self.failures.append(f"{type(err).__name__}: {err}")
            else:
                self.ok += 1


def _v2_body(rows: np.ndarray) -> bytes:
    tensor = {
        "name": "input-0",
        "shape": list(rows.shape),
        "datatype": "FP64",
        "data": rows.ravel().tolist(),
    }
    return json.dumps({"inputs": [tensor]}).encode()


def _http_once(
    port: int,
    body: bytes,
    conn: list[http.client.HTTPConnection] | None,
    auth: dict[str, str],
) -> None:
    """One request: on a new connection (``conn`` None), or on the kept-alive ``conn[0]``."""
    connection = conn[0] if conn else http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json", **auth}
    if conn is None:
        headers["connection"] = "close"
    try:
        connection.request("POST", "/v2/models/clf/infer", body, headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")
        if conn is not None and response.getheader("connection", "").lower() == "close":
            connection.close()  # reconnects on the next request, as clients do
    except BaseException:
        connection.close()  # a kept-alive connection too: the next call reconnects
        raise
    finally:
        if conn is None:
            connection.close()


def _grpc_once(port: int, rows: np.ndarray, auth: dict[str, str]) -> None:
    request = pb.ModelInferRequest(model_name="clf")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=list(rows.shape))
    tensor.contents.fp64_contents.extend(rows.ravel().tolist())
    # A new channel (a new TCP connection) per call: each lands on a listening socket.
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.ModelInfer(request, timeout=30, metadata=list(auth.items()))


def test_switching_worker_counts_under_many_connections_loses_nothing(
    home: Path, models: Models
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model({"model_uri": models.a, "model_name": "clf", "workers": 1})
    assert isinstance(server, LocalModelServer)
    port, grpc_port = server.endpoint.port, server.grpc_port
    assert port is not None and grpc_port is not None
    body = _v2_body(models.rows)
    auth = server.request_headers()
    keep: list[http.client.HTTPConnection] = [
        http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ]
    loops = [_Loop(lambda: _http_once(port, body, None, auth)) for _ in range(3)]
    loops.append(_Loop(lambda: _http_once(port, body, keep, auth)))
    loops.append(_Loop(lambda: _grpc_once(grpc_port, models.rows, auth)))
    for loop in loops:
        loop.start()
    try:
        for workers in _SWITCHES:
            before = [loop.ok for loop in loops]
            deployer.deploy_model(
                {"model_uri": models.a, "model_name": "clf", "workers": workers}, timeout=300
            )
            # Every client got answers across the switch (a bounded wait for the slowest).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(
                loop.ok < start + 20 for loop, start in zip(loops, before, strict=True)
            ):
                time.sleep(0.05)
    finally:
        for loop in loops:
            loop.stop.set()
        for loop in loops:
            loop.join(60)
        keep[0].close()
    failures = [f"client {i}: {f}" for i, loop in enumerate(loops) for f in loop.failures]
    answered = sum(loop.ok for loop in loops)
    assert failures == [], (
        f"{len(failures)} of {answered + len(failures)} failed: {sorted(set(failures))[:8]}"
    )
    assert all(loop.ok > 20 * len(_SWITCHES) for loop in loops), [loop.ok for loop in loops]
    [found] = deployer.find_model_server(model_name="clf")
    assert isinstance(found, LocalModelServer) and found.workers == _SWITCHES[-1]
