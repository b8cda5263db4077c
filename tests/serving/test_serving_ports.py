"""One server per port: a second server on a port in use refuses to start and names the
holder; the first keeps every connection."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from shipyard.errors import ServiceError
from shipyard.testing import free_port, start_server

ONE_ROW = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 1, 1, 1]}]}


def _answers(url: str, times: int) -> set[float]:
    seen: set[float] = set()
    for _ in range(times):
        # A new connection each time: the kernel would spread them over every listener.
        with httpx.Client(base_url=url, timeout=30) as http:
            response = http.post("/v2/models/const1/infer", json=ONE_ROW)
            assert response.status_code == 200, response.text
            seen.add(response.json()["outputs"][0]["data"][0])
    return seen


def test_a_second_server_on_a_used_port_is_refused(models_dir: Path) -> None:
    pytest.importorskip("grpc")
    with start_server(models_dir / "const1", workers=2, grpc=True) as first:
        holder = f"process {first.pid}"
        for used, port_args in (
            (first.http_port, ["--http-port", str(first.http_port), "--grpc-port", "0"]),
            (
                first.grpc_port,
                ["--http-port", str(free_port()), "--grpc-port", str(first.grpc_port)],
            ),
        ):
            with pytest.raises(ServiceError) as refused:
                # Stopped (by PID) if it starts after all, so a failure leaks no process.
                start_server(models_dir / "const2", workers=2, grpc=True, args=port_args).stop()
            text = str(refused.value)
            assert f"port {used} on 127.0.0.1 is already in use by {holder}" in text, text
        # Every connection still reaches the first server's model.
        assert _answers(first.url, 20) == {1.0}


def test_a_port_held_by_another_program_is_named(models_dir: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(
            ServiceError, match=f"port {port} on 127.0.0.1 is already in use by process"
        ):
            start_server(models_dir / "const1", args=["--http-port", str(port)]).stop()
