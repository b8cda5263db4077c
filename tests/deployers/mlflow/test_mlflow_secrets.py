"""Issue 11's rules for the mlflow flavor: credentials in a tracking URI never reach argv,
the service files or store.db; engine mlflow (no auth) refuses a non-loopback host; a
remote model that runs code needs explicit trust, while the user's own registry is
trusted. (engine shipyard's bearer token: ``test_mlflow_cli.py``.)"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest

from shipyard.deployers.mlflow import (
    MLFlowDeploymentService,
    MLFlowModelDeployer,
    MLFlowShipyardServer,
)
from shipyard.deployers.testing import files_holding
from shipyard.errors import ConfigError, ShipyardError
from shipyard.testing import free_port

from .conftest import Registry, activate_mlflow_stack, cli

PASSWORD = "Mlf-9d2e-test-only"


def _with_credentials(tracking_uri: str, password: str = PASSWORD) -> str:
    # MLflow's server here checks no credentials; its client sends them (basic auth).
    return tracking_uri.replace("http://", f"http://reader:{password}@")


def _processes(pid: int) -> list[int]:
    """``pid`` and its descendants (the keeper's workers, the supervisor's)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.is_file():
            todo.extend(int(c) for c in children.read_text().split())
    return found


# Two server starts, each loading MLflow.
@pytest.mark.timeout(900)
def test_tracking_uri_credentials_stay_secret(home: Path, registry: Registry) -> None:
    # The deployer's tracking URI (a component setting) and a deployment's carry a password.
    activate_mlflow_stack(registry, tracking_uri=_with_credentials(registry.tracking_uri))
    deployer = MLFlowModelDeployer.get_active_model_deployer()
    rows = registry.rows.tolist()
    services: list[MLFlowShipyardServer | MLFlowDeploymentService] = []
    for engine in ("shipyard", "mlflow"):
        service = deployer.deploy_model(
            {
                "registry_model_name": registry.name,
                "registry_model_version": "1",
                "engine": engine,
                "model_name": f"clf-{engine}",
                # engine mlflow: its own tracking URI, with another password.
                "tracking_uri": _with_credentials(registry.tracking_uri, PASSWORD + "2")
                if engine == "mlflow"
                else "",
            },
            timeout=240,
        )
        assert isinstance(service, MLFlowShipyardServer | MLFlowDeploymentService)
        services.append(service)
        # It serves: engine shipyard loads models:/clf/1 through the tracking server.
        assert len(service.predict(rows)) == len(rows)
    for service in services:
        pid = service.running_pid()
        assert pid is not None
        for each in _processes(pid):
            assert PASSWORD not in Path(f"/proc/{each}/cmdline").read_text(errors="replace")
    # Nothing under SHIPYARD_HOME holds it in plain text: store.db, service.json, logs.
    assert files_holding(home, PASSWORD.encode()) == []
    for command in (["list"], ["describe", services[0].uuid]):
        for output in ("table", "json"):
            shown = cli("model-deployer", "models", *command, "--output", output)
            assert PASSWORD not in shown
    assert PASSWORD not in cli("model-deployer", "describe", "mlf")
    described = json.loads(
        cli("model-deployer", "models", "describe", services[1].uuid, "--output", "json")
    )
    assert described["info"]["TRACKING_URI"].startswith("http://***@127.0.0.1")
    # The record keeps a reference; the value is in the secrets store.
    recorded = deployer.get_model_server(services[1].uuid)
    assert isinstance(recorded, MLFlowDeploymentService)
    assert recorded.registry.tracking_uri.startswith("http://{{secret.")
    assert recorded.config.tracking_uri == recorded.registry.tracking_uri

    # An unreachable tracking server with a password: the error names it, masked.
    closed = f"http://reader:{PASSWORD}@127.0.0.1:{free_port()}"
    with pytest.raises(ShipyardError) as caught:
        deployer.deploy_model(
            {"registry_model_name": registry.name, "tracking_uri": closed, "model_name": "x"}
        )
    assert "Cannot reach the MLflow tracking server" in str(caught.value)
    assert PASSWORD not in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    for service in services:
        deployer.delete_model_server(service.uuid)


def test_engine_mlflow_refuses_a_non_loopback_host(home: Path, registry: Registry) -> None:
    activate_mlflow_stack(registry)
    deployer = MLFlowModelDeployer.get_active_model_deployer()
    with pytest.raises(ConfigError, match="--insecure") as caught:
        deployer.deploy_model(
            {"registry_model_name": registry.name, "engine": "mlflow", "host": "0.0.0.0"}
        )
    assert "checks no token" in str(caught.value)
    assert deployer.find_model_server() == []


@pytest.fixture
def joblib_server(tmp_path: Path, registry: Registry) -> Iterator[str]:
    """A 127.0.0.1 HTTP server with a joblib (pickle) model; its URL."""
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression().fit(registry.rows, [0, 1] * 4), tmp_path / "clf.joblib")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clf.joblib"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_remote_pickle_needs_trust_the_registry_does_not(
    home: Path, registry: Registry, joblib_server: str
) -> None:
    activate_mlflow_stack(registry)
    deployer = MLFlowModelDeployer.get_active_model_deployer()
    fields = {"model_uri": joblib_server, "model_name": "remote", "engine": "shipyard"}
    with pytest.raises(ShipyardError, match="--trust") as caught:
        deployer.deploy_model(fields, timeout=240)
    assert "Refusing to load" in str(caught.value)
    assert deployer.find_model_server() == []
    trusted = deployer.deploy_model({**fields, "trusted": True}, timeout=240)
    assert len(trusted.predict(registry.rows)) == len(registry.rows)
    deployer.delete_model_server(trusted.uuid)
    # The registry of the stack's tracking server needs no flag: every other test here
    # deploys models:/ URIs without one (engine shipyard's server checks trust itself).
