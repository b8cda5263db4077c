"""``engine: shipyard`` reports what it serves, so an interrupted update (a killed deployer)
converges on the next command, as with the local flavor: the registry and the server agree
whether the server finished the switch (the record follows) or abandoned it (rolled back)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.deployers.mlflow import MLFlowModelDeployer, MLFlowShipyardServer
from shipyard.serving.control import send_command

from .conftest import Registry, activate_mlflow_stack

HERE = Path(__file__).parent
LOAD_S = 8.0
NAME = "slow"
ALIAS = "live"


@pytest.fixture(scope="module")
def slow_model(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registered model ``slow``: v1 loads at once and answers 1, v2 takes LOAD_S and
    answers 2; every load leaves a file in the returned folder."""
    import mlflow

    marks = tmp_path_factory.mktemp("marks")
    mlflow.set_tracking_uri(registry.tracking_uri)
    for delay, answer in ((0.0, 1.0), (LOAD_S, 2.0)):
        with mlflow.start_run():
            mlflow.pyfunc.log_model(
                name="model",
                python_model=str(HERE / "slow_pyfunc.py"),
                model_config={"delay": delay, "answer": answer, "marks": str(marks)},
                registered_model_name=NAME,
                pip_requirements=["mlflow"],
            )
    return marks


def _config() -> dict[str, Any]:
    return {
        "registry_model_name": NAME,
        "alias": ALIAS,
        "engine": "shipyard",
        "pipeline_name": "p",
        "pipeline_step_name": "s",
    }


def _answer(server: MLFlowShipyardServer) -> float:
    response = httpx.post(
        f"{server.endpoint.url}/invocations",
        json={"inputs": [[1.0]]},
        headers=server.request_headers(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return float(response.json()["predictions"][0])


def _served(server: MLFlowShipyardServer) -> tuple[str, bool]:
    """(the URI the supervisor serves, whether a reload is under way), asked directly."""
    answer = send_command(server.control_socket, {"op": "status"}, timeout=30)
    [model] = answer["models"]
    return str(model["uri"]), answer.get("reload") is not None


def _wait(predicate: Any, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _update_in_child(home: Path) -> subprocess.Popen[bytes]:
    script = textwrap.dedent(
        f"""
        from shipyard.deployers.mlflow import MLFlowModelDeployer
        MLFlowModelDeployer.get_active_model_deployer().deploy_model({_config()!r}, timeout=300)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "SHIPYARD_HOME": str(home)}
    )


def _kill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=60)


def _agrees(deployer: MLFlowModelDeployer) -> MLFlowShipyardServer:
    """The one server, after the next command: no change left open, and the record, the
    supervisor and the answers name the same version."""
    [server] = deployer.find_model_server(pipeline_name="p")
    assert isinstance(server, MLFlowShipyardServer)
    assert server.intent is None and server.pending_registry is None
    served, changing = _served(server)
    assert not changing
    assert served == server.registry.pinned_uri == f"models:/{NAME}/{server.model_version}"
    assert _answer(server) == float(server.model_version)
    return server


@pytest.mark.timeout(900)
def test_killed_deployer_mid_update_converges_on_the_next_command(
    home: Path, registry: Registry, slow_model: Path
) -> None:
    client: Any = registry.client()
    client.set_registered_model_alias(NAME, ALIAS, "1")
    activate_mlflow_stack(registry)
    deployer = MLFlowModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(_config(), timeout=300)
    assert isinstance(server, MLFlowShipyardServer) and _answer(server) == 1.0
    loads = len(list(slow_model.iterdir()))
    client.set_registered_model_alias(NAME, ALIAS, "2")

    # 1. Killed while v2 loads: the server abandons the reload (its caller hung up); the
    #    next command rolls the record back to v1 and says so.
    child = _update_in_child(home)
    try:
        _wait(lambda: len(list(slow_model.iterdir())) > loads, "v2 to start loading")
    finally:
        _kill(child)
    _wait(lambda: not _served(server)[1], "the server to abandon the reload")
    rolled_back = _agrees(deployer)
    assert rolled_back.model_version == "1"
    assert "interrupted" in rolled_back.status.last_error
    loads = len(list(slow_model.iterdir()))

    # 2. Frozen while v2 loads, killed once the server has switched: the server serves v2
    #    though the deployer never wrote it down; the next command finishes the update.
    child = _update_in_child(home)
    try:
        _wait(lambda: len(list(slow_model.iterdir())) > loads, "v2 to start loading")
        os.kill(child.pid, signal.SIGSTOP)
        _wait(lambda: _served(server) == (f"models:/{NAME}/2", False), "the switch to v2")
    finally:
        _kill(child)
    finished = _agrees(deployer)
    assert finished.model_version == "2" and finished.uuid == server.uuid
    assert finished.config.model_uri == f"models:/{NAME}@{ALIAS}"

    # 3. Deploying the same config again is a no-op; pointing the alias back converges.
    assert deployer.deploy_model(_config(), timeout=300).uuid == server.uuid
    client.set_registered_model_alias(NAME, ALIAS, "1")
    again = deployer.deploy_model(_config(), timeout=300)
    assert isinstance(again, MLFlowShipyardServer)
    assert again.model_version == "1" and _answer(again) == 1.0
    assert _agrees(deployer).model_version == "1"
