"""Test helpers that users need too: start a real model server on a free port, wait until
it is ready, fail fast with its log if it died, and stop it by PID.

    from shipyard.testing import start_server

    with start_server("./my-model", workers=1) as server:
        httpx.post(f"{server.url}/v2/models/my-model/infer", json=...)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from shipyard.errors import ServiceError

__all__ = [
    "MlflowServer",
    "ServerProcess",
    "async_wait_until",
    "free_port",
    "metric_value",
    "parse_metrics",
    "start_mlflow_server",
    "start_server",
    "wait_until",
]

#: Seconds a wait gives up after unless told otherwise: long, for a loaded shared machine.
DEFAULT_WAIT = 120.0
_POLL = 0.05


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEFAULT_WAIT) -> None:
    """Poll ``condition`` until it is true; ``AssertionError`` naming ``what`` after
    ``timeout`` seconds. Waits for an event, never asserts how long it took."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(_POLL)


async def async_wait_until(
    condition: Callable[[], object],
    what: str,
    timeout: float = DEFAULT_WAIT,
    interval: float = _POLL,
) -> None:
    """``wait_until`` for coroutines: the event loop keeps running while it waits
    (``interval=0`` yields one loop turn at a time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text exposition as ``{(name, labels): value}`` (comments skipped)."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None or line.startswith("#"):
            continue
        name, labels, value = found.groups()
        pairs = frozenset(_LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def metric_value(text: str, name: str, default: float | None = 0.0, **labels: str) -> float:
    """The value of sample ``name{labels}`` in Prometheus ``text``; ``default`` when it
    is not there (None: raise ``AssertionError`` showing the text).

    The labels are keyword arguments, or written into ``name`` as in the text itself:
    ``metric_value(text, 'shipyard_requests_total{model="m",status="200"}')``.
    """
    if "{" in name:
        name, _, written = name.partition("{")
        labels = {**dict(_LABEL.findall(written)), **labels}
    value = parse_metrics(text).get((name, frozenset(labels.items())))
    if value is not None:
        return value
    if default is None:
        shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
        raise AssertionError(f"{name}{{{shown}}} is not in the metrics:\n{text}")
    return default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Started:
    """A process a helper here started, with its log: stopped on leaving a ``with``."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess(_Started):
    """A model server started by ``start_server``: its ports, control socket and log."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        *,
        host: str,
        http_port: int,
        grpc_port: int | None,
        control_socket: Path,
        log_path: Path,
        workdir: tempfile.TemporaryDirectory[str] | None,
    ) -> None:
        self.process = process
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.control_socket = control_socket
        self.log_path = log_path
        self._workdir = workdir

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        if self.grpc_port is None:
            raise ServiceError("This server was started without gRPC.")
        return f"{self.host}:{self.grpc_port}"

    def command(self, command: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        """Send a control command (see ``shipyard.serving.control``)."""
        from shipyard.serving.control import send_command

        return send_command(self.control_socket, command, timeout)

    def status(self) -> dict[str, Any]:
        return self.command({"op": "status"}, timeout=10.0)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every worker is ready; raise with the log if the server died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServiceError(
                    f"The model server (pid {self.pid}) exited with code {code} before it was "
                    f"ready. Its log:\n{self.log()}"
                )
            if self.control_socket.exists():
                with contextlib.suppress(ServiceError):
                    if self.status().get("ready"):
                        return
            time.sleep(0.05)
        raise ServiceError(
            f"The model server (pid {self.pid}) was not ready after {timeout} s. "
            f"Its log:\n{self.log()}"
        )

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
        """Stop the server (by its PID): ``sig``, then SIGKILL after ``timeout``; returns its
        exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_workers()
                self.process.kill()
                self.process.wait()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        return int(self.process.returncode)

    def _kill_workers(self) -> None:
        # A supervisor that does not stop may leave workers behind: kill them by PID.
        with contextlib.suppress(ServiceError):
            for worker in self.status().get("workers", []):
                if worker.get("pid"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(worker["pid"]), signal.SIGKILL)


def _spawn(
    command: list[str], log_path: Path, env: dict[str, str], new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``command`` with no stdin, stdout and stderr into ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=new_session,
            env=env,
        )


def start_server(
    *model_uris: str | os.PathLike[str],
    args: list[str] | None = None,
    workers: int = 1,
    grpc: bool = False,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> ServerProcess:
    """Start ``python -m shipyard.serving`` on free ports and wait until it is ready.

    ``args`` are extra command-line options (``["--max-batch-size", "8"]``). Raises
    ``ServiceError`` with the server's log if it dies or is not ready within ``timeout``.
    """
    workdir = tempfile.TemporaryDirectory(prefix="shipyard-test-server-")
    root = Path(workdir.name)
    http_port = free_port(host)
    grpc_port = free_port(host) if grpc else None
    control = root / "control.sock"
    command = [
        sys.executable,
        "-m",
        "shipyard.serving",
        *map(str, model_uris),
        "--host",
        host,
        "--http-port",
        str(http_port),
        "--workers",
        str(workers),
        "--control-socket",
        str(control),
        "--run-dir",
        str(root / "run"),
    ]
    command += ["--grpc-port", str(grpc_port)] if grpc_port is not None else ["--no-grpc"]
    command += args or []
    log_path = root / "server.log"
    process = _spawn(command, log_path, {**os.environ, **(env or {})})
    server = ServerProcess(
        process,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        control_socket=control,
        log_path=log_path,
        workdir=workdir,
    )
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop(timeout=10)
        raise
    return server


class MlflowServer(_Started):
    """An MLflow tracking server started by ``start_mlflow_server``, in its own process
    group (its uvicorn workers are in it), stopped by that group, never by name."""

    def __init__(self, process: subprocess.Popen[bytes], uri: str, log_path: Path) -> None:
        self.process = process
        self.uri = uri
        self.log_path = log_path

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the process group, then SIGKILL after ``timeout``."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()


def start_mlflow_server(root: str | os.PathLike[str], timeout: float = 300.0) -> MlflowServer:
    """Start ``mlflow server`` (needs ``shipyard[mlflow]``) on a free loopback port: SQLite
    backend ``root/mlflow.db``, artifacts under ``root/artifacts``, log
    ``root/mlflow-server.log``; wait until ``/health`` answers.

    One uvicorn worker and no job runner (MLflow's async jobs start 8 more processes).
    Raises ``ServiceError`` with the log if it dies or is not up within ``timeout``.
    """
    import urllib.error
    import urllib.request

    root = Path(root)
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log_path = root / "mlflow-server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = _spawn(command, log_path, env, new_session=True)
    server = MlflowServer(process, f"http://127.0.0.1:{port}", log_path)

    def healthy() -> bool:
        if process.poll() is not None:
            raise ServiceError(
                f"The MLflow server exited with code {process.returncode}. "
                f"Its log:\n{server.log()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as answer:
                return int(answer.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        deadline = time.monotonic() + timeout
        while not healthy():
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"The MLflow server was not up after {timeout} s. "
                    f"Its log:\n{server.log()[-2000:]}"
                )
            time.sleep(0.5)
    except BaseException:
        server.stop(timeout=10)
        raise
    return server
