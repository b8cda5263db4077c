"""Crash-loop safety: a reload no worker could be started with is refused up front, and
a worker that cannot be restarted (its model corrupted in place) is retried a bounded
number of times, after which the server says `error` with the cause and no worker says
it is ready."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.services import ServiceState
from shipyard.serving.control import send_command

from .conftest import Models


def _status(server: LocalModelServer) -> dict[str, Any]:
    return send_command(server.control_socket, {"op": "status"}, timeout=30)


def _kill_a_worker(server: LocalModelServer) -> int:
    pid = int(_status(server)["workers"][0]["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def _wait(what: str, predicate: Any, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_a_reload_with_an_unservable_name_is_refused_and_restarts_still_work(
    home: Path, models: Models
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=models.a, model_name="clf", workers=1), timeout=300
    )
    assert isinstance(server, LocalModelServer)
    answer = send_command(
        server.control_socket,
        {"op": "reload", "model_uri": models.b, "name": "../../x y"},
        timeout=120,
    )
    assert answer["ok"] is False and "name" in answer["error"]
    killed = _kill_a_worker(server)
    _wait(
        "a replacement worker is ready",
        lambda: (s := _status(server))["ready"] and s["workers"][0]["pid"] != killed,
    )
    assert server.predict(models.rows).tolist() == models.expected_a()


def test_a_model_corrupted_in_place_stops_the_restarts_and_shows_error(
    home: Path, models: Models, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(models.a, model_dir)
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(model_dir), model_name="clf", workers=2),
        timeout=300,
    )
    assert isinstance(server, LocalModelServer)
    # The server loads the copy pinned at deploy (the user's folder no longer matters):
    # that copy is what a disk fault would corrupt.
    (Path(server.model_snapshot) / "model.joblib").write_bytes(b"corrupted in place")
    _kill_a_worker(server)
    _wait("the supervisor gives up restarting", lambda: _status(server).get("error"))
    status = _status(server)
    assert status["ready"] is False
    assert "model.joblib" in status["error"] or "load" in status["error"].lower()
    # The surviving worker says it is not ready, with the cause.
    url = f"{server.endpoint.url}/v2/health/ready"
    response = httpx.get(url, timeout=30)
    assert response.status_code == 503 and response.json()["error"] == status["error"]
    # Bounded: no more restarts once it gave up.
    restarts = server.log_path.read_text().count("starting a new one")
    time.sleep(3)
    assert server.log_path.read_text().count("starting a new one") == restarts <= 5
    [found] = deployer.find_model_server(model_name="clf")
    assert found.status.state == ServiceState.ERROR
    assert status["error"] in found.status.last_error
