"""`shipyard build MODEL --output DIR`: the context holds the model, Shipyard's code,
pinned requirements and a Dockerfile; its ENTRYPOINT + CMD, run as written (with this
machine's Python for the image's, and DIR for /app), serves the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard.errors import ConfigError
from shipyard.testing import free_port

from ..conftest import Models
from .conftest import cli


def _instruction(dockerfile: str, name: str) -> list[str]:
    for line in dockerfile.splitlines():
        if line.startswith(f"{name} "):
            parsed: list[str] = json.loads(line.removeprefix(f"{name} "))
            return parsed
    raise AssertionError(f"no {name} in the Dockerfile")


def test_the_build_context_serves_the_model_through_its_own_entrypoint(
    home: Path, models: Models, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    out = cli("build", models.a, "--output", str(context), "--name", "iris")
    assert "docker build" in out
    dockerfile = (context / "Dockerfile").read_text()
    assert (context / "model" / "model.joblib").is_file()
    assert (context / "model" / "shipyard.yaml").is_file()
    assert (context / "shipyard" / "cli" / "main.py").is_file()
    requirements = (context / "requirements.txt").read_text().splitlines()
    assert requirements and all("==" in line for line in requirements)
    names = {line.split("==")[0].lower() for line in requirements}
    assert {"pydantic", "uvicorn", "numpy", "scikit-learn"} <= names
    assert "USER 1000" in dockerfile

    entrypoint = _instruction(dockerfile, "ENTRYPOINT")
    command = _instruction(dockerfile, "CMD")
    assert entrypoint[0] == "python" and command[0] == "serve"
    http, grpc = free_port(), free_port()
    # The image's paths mapped onto the context; loopback instead of the pod's 0.0.0.0.
    argv = [sys.executable, *entrypoint[1:]] + [
        str(context / "model") if arg == "/app/model" else arg for arg in command
    ]
    replace = {"0.0.0.0": "127.0.0.1", "8080": str(http), "8081": str(grpc)}
    argv = [replace.get(arg, arg) for arg in argv]
    env = {
        **os.environ,
        "PYTHONPATH": str(context),  # the image's PYTHONPATH=/app: the copied code
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        argv, env=env, cwd=context, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        rows = models.rows
        answer = httpx.post(
            f"http://127.0.0.1:{http}/v2/models/iris/infer",
            json={
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": list(rows.shape),
                        "datatype": "FP64",
                        "data": rows.ravel().tolist(),
                    }
                ]
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == models.expected_a()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()
    # With the image's environment, `shipyard` is the context's copy, not the install here.
    where = subprocess.run(
        [sys.executable, "-c", "import shipyard; print(shipyard.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(context), where


def test_build_refuses_a_non_empty_output(home: Path, models: Models, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        cli("build", models.a, "--output", str(tmp_path / "taken"))
    assert (tmp_path / "taken" / "file").read_text() == "mine"
