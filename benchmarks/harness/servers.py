"""How each server under test is laid out on disk, started, probed and checked."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import setup
from .procs import Server, free_port, http

CORES = os.cpu_count() or 1
RUN = setup.WORK / "run"


@dataclass
class Target:
    """A started-or-startable server plus what the harness needs to load it."""

    key: str  # shipyard | mlserver-batch | mlserver-nobatch | mlflow | bare
    model: str  # rf | lr | const
    server: Server
    http_port: int
    grpc_port: int | None
    infer_path: str
    protocol: str  # oip | mlflow | const
    workers: str  # how the worker count was set, for the report
    spec: tuple[str, str] | None = None  # OIP input name and datatype, once known

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}{self.infer_path}"

    def body(self, n: int) -> bytes:
        if self.protocol == "mlflow":
            return setup.mlflow_body(n)
        if self.protocol == "oip":
            name, dtype = self.input_spec()
            return setup.oip_body(n, name, dtype)
        return setup.oip_body(n, "input-0")

    def input_spec(self) -> tuple[str, str]:
        """Input name and datatype from the model metadata (Shipyard names its inputs)."""
        if self.key != "shipyard":
            return "input-0", "FP64"
        if self.spec is None:
            url = f"http://127.0.0.1:{self.http_port}/v2/models/{self.model}"
            status, raw = http("GET", url)
            if status != 200:
                return "input-0", "FP64"
            inputs = json.loads(raw).get("inputs") or [{}]
            self.spec = (
                str(inputs[0].get("name", "input-0")),
                str(inputs[0].get("datatype", "FP64")),
            )
        return self.spec

    def answer_ok(self, n: int, status: int, raw: bytes) -> bool:
        """True when the reply holds the model's real predictions for the n rows."""
        if status != 200:
            return False
        if self.protocol == "const":
            return True
        want = setup.expected("joblib")["predictions"]
        if not isinstance(want, dict):
            return False
        expected = [int(v) for v in want[self.model][:n]]
        reply = json.loads(raw)
        if self.protocol == "mlflow":
            return [int(v) for v in reply["predictions"]] == expected
        for out in reply.get("outputs", []):
            data = out.get("data", [])
            if len(data) == n and [int(v) for v in data] == expected:
                return True
        return False

    def probe(self) -> Callable[[], bool]:
        def check() -> bool:
            status, raw = http("POST", self.url, self.body(1), timeout=5)
            return self.answer_ok(1, status, raw)

        return check


def _log(key: str, model: str) -> Path:
    return RUN / "logs" / f"{key}-{model}.log"


def shipyard(model: str) -> Target:
    http_port, grpc_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "shipyard.serving",
        str(setup.MODELS / "shipyard" / model),
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--workers",
        str(CORES),
        "--name",
        model,
    ]
    return Target(
        "shipyard",
        model,
        Server("shipyard", argv, setup.REPO, _log("shipyard", model)),
        http_port,
        grpc_port,
        f"/v2/models/{model}/infer",
        "oip",
        f"--workers {CORES}",
    )


def mlserver(model: str, batching: bool) -> Target:
    key = "mlserver-batch" if batching else "mlserver-nobatch"
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    repo = RUN / f"{key}-{model}"
    if repo.exists():
        shutil.rmtree(repo)
    (repo / model).mkdir(parents=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": CORES,
        # debug=True (the default) logs every request; off, as in production.
        "debug": False,
    }
    (repo / "settings.json").write_text(json.dumps(settings))
    model_settings: dict[str, object] = {
        "name": model,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(setup.MODELS / "mlserver" / model / "model.joblib")},
    }
    if batching:
        model_settings |= {"max_batch_size": 32, "max_batch_time": 0.005}
    (repo / model / "model-settings.json").write_text(json.dumps(model_settings))
    argv = [str(setup.VENVS / "mlserver" / "bin" / "mlserver"), "start", str(repo)]
    env = _venv_env("mlserver")
    return Target(
        key,
        model,
        Server(key, argv, repo, _log(key, model), env),
        http_port,
        grpc_port,
        f"/v2/models/{model}/infer",
        "oip",
        f"parallel_workers={CORES} (one uvicorn front process + {CORES} inference processes)",
    )


def mlflow(model: str) -> Target:
    port = free_port()
    argv = [
        str(setup.VENVS / "mlflow" / "bin" / "mlflow"),
        "models",
        "serve",
        "--env-manager",
        "local",
        "-m",
        str(setup.MODELS / "mlflow" / model),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "-w",
        str(CORES),
    ]
    work = RUN / "mlflow"
    work.mkdir(parents=True, exist_ok=True)
    return Target(
        "mlflow",
        model,
        Server("mlflow", argv, work, _log("mlflow", model), _venv_env("mlflow")),
        port,
        None,
        "/invocations",
        "mlflow",
        f"-w {CORES} (uvicorn workers)",
    )


def bare() -> Target:
    port = free_port()
    argv = [
        str(setup.VENVS / "starlette" / "bin" / "uvicorn"),
        "bare_app:app",
        "--app-dir",
        str(setup.SCRIPTS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(CORES),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Target(
        "bare",
        "const",
        Server("bare", argv, setup.BENCH, _log("bare", "const"), _venv_env("starlette")),
        port,
        None,
        "/infer",
        "const",
        f"uvicorn --workers {CORES} --loop uvloop --http httptools",
    )


def _venv_env(name: str) -> dict[str, str]:
    bin_dir = setup.VENVS / name / "bin"
    return {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(setup.VENVS / name),
    }


def make(key: str, model: str) -> Target:
    if key == "shipyard":
        return shipyard(model)
    if key == "mlserver-batch":
        return mlserver(model, batching=True)
    if key == "mlserver-nobatch":
        return mlserver(model, batching=False)
    if key == "mlflow":
        return mlflow(model)
    if key == "bare":
        return bare()
    raise ValueError(f"unknown server {key!r}")
