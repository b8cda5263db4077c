"""Requests leave no reference cycles behind, so the cyclic garbage collector has nothing
to find in a busy worker (``serving._heap``; its full passes paused a worker for ~100 ms).

Real server processes, real requests on one keep-alive connection per path, and the
collector's own totals from ``/metrics``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shipyard.testing import ServerProcess, metric_value, start_server

REQUESTS = 1500
BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [0.5] * 8}]}
).encode()
REQUEST = (
    b"POST /v2/models/forest/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
)


def _collected(server: ServerProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.http_port}/metrics", timeout=30).text
    return sum(
        metric_value(text, "python_gc_objects_collected_total", None, generation=str(g))
        for g in range(3)
    )


def _answers(server: ServerProcess, count: int) -> None:
    """``count`` requests, one after another on one connection; each answer read whole."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as sock:
        pending = b""
        for _ in range(count):
            sock.sendall(REQUEST)
            while b"\r\n\r\n" not in pending:
                pending += sock.recv(65536)
            head, _, pending = pending.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(pending) < length:
                pending += sock.recv(65536)
            pending = pending[length:]


@pytest.fixture(scope="module", params=["direct", "asgi"])
def http_server(request: pytest.FixtureRequest, models_dir: Path) -> Iterator[ServerProcess]:
    env = {"SHIPYARD_FAST_HTTP": "off"} if request.param == "asgi" else {}
    with start_server(models_dir / "forest", env=env) as process:
        yield process


def test_http_requests_leave_no_cycles_for_the_collector(http_server: ServerProcess) -> None:
    _answers(http_server, 50)  # warm: first-use caches and imports
    before = _collected(http_server)
    _answers(http_server, REQUESTS)
    found = _collected(http_server) - before
    # Before the direct path cut its links, each request left ~15 objects in a cycle
    # (27,138 in one run of the old code). A handful may come from elsewhere (the metrics thread).
    assert found < REQUESTS / 10, f"{found:g} objects in reference cycles after {REQUESTS}"


def test_the_collector_totals_are_in_the_metrics(http_server: ServerProcess) -> None:
    text = httpx.get(f"http://127.0.0.1:{http_server.http_port}/metrics", timeout=30).text
    assert "# TYPE python_gc_collections_total counter" in text
    # Start-up ran at least one full collection before freezing what it loaded.
    assert metric_value(text, "python_gc_collections_total", None, generation="2") >= 1


def test_grpc_requests_leave_no_cycles_for_the_collector(models_dir: Path) -> None:
    import grpc

    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

    request = pb.ModelInferRequest(model_name="forest")
    request.inputs.add(name="input-0", datatype="FP64", shape=[2, 4])
    request.raw_input_contents.append(np.full((2, 4), 0.5).astype("<f8").tobytes())
    with (
        start_server(models_dir / "forest", grpc=True) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(50):
            stub.ModelInfer(request, timeout=30)
        before = _collected(server)
        for _ in range(REQUESTS):
            stub.ModelInfer(request, timeout=30)
        found = _collected(server) - before
    assert found < REQUESTS / 10, f"{found:g} objects in reference cycles after {REQUESTS}"
