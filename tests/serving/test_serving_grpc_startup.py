"""A worker that cannot serve what the supervisor announces fails start-up with the cause.

Here the gRPC listener cannot start because its protobuf runtime cannot be imported in
the server's processes (grpc itself is there, so the supervisor reserves a gRPC port):
the server must exit with the import error, not announce a gRPC port nobody listens on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from shipyard.testing import free_port, wait_until


def test_a_grpc_listener_that_cannot_start_fails_the_server(
    models_dir: Path, tmp_path: Path, without_packages: Callable[..., dict[str, str]]
) -> None:
    command = [
        sys.executable,
        "-m",
        "shipyard.serving",
        str(models_dir / "const1"),
        "--http-port",
        str(free_port()),
        "--grpc-port",
        str(free_port()),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    env = {**os.environ, **without_packages("google")}
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(
            lambda: proc.poll() is not None or "ready" in log.read_text(), "the server to end"
        )
    finally:
        if proc.poll() is None:
            # The old behaviour: it serves HTTP and announces a gRPC port it does not serve.
            proc.terminate()
            proc.wait(60)
    out = log.read_text()
    assert proc.returncode == 1, out
    assert "gRPC" in out and "google" in out, out
    assert "ready" not in out, out
