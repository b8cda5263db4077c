"""No outage on redeploy: an omitted field keeps its value, and a change that needs new
processes (workers) is a rolling replacement on the same URL; a looping client sees no
failed request either way."""

from __future__ import annotations

from pathlib import Path

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.services.process import process_start_time

from .conftest import Models
from .test_continuous_deployment import Client


def _values(model_uri: str, **extra: object) -> dict[str, object]:
    # As `shipyard deploy` sends them: only the options the user gave.
    return {"model_uri": model_uri, "model_name": "clf", **extra}


def test_redeploy_without_workers_keeps_them_and_drops_no_request(
    home: Path, models: Models
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    first = deployer.deploy_model(_values(models.a, workers=2), timeout=300)
    assert isinstance(first, LocalModelServer)
    pid = first.running_pid()
    client = Client(str(first.prediction_url), models.rows.tolist(), first.request_headers())
    client.start()
    try:
        client.wait_for(5)
        second = deployer.deploy_model(_values(models.b), timeout=300)
        client.wait_for(5)
    finally:
        client.stop.set()
        client.join()
    assert client.failures == []
    assert isinstance(second, LocalModelServer)
    assert (second.running_pid(), second.workers, second.config.workers) == (pid, 2, 2)
    assert second.config.model_uri == models.b


def test_changing_workers_is_a_rolling_replacement(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    first = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=models.a, model_name="clf", workers=1), timeout=300
    )
    assert isinstance(first, LocalModelServer)
    old_pid, url = first.running_pid(), first.prediction_url
    assert old_pid is not None
    # The token stays the same across the replacement: the new processes read the same file.
    client = Client(str(url), models.rows.tolist(), first.request_headers())
    client.start()
    try:
        client.wait_for(5)
        second = deployer.deploy_model(_values(models.b, workers=2), timeout=300)
        client.wait_for(20)
    finally:
        client.stop.set()
        client.join()
    assert client.failures == []
    assert isinstance(second, LocalModelServer)
    assert second.prediction_url == url and second.workers == 2
    assert second.running_pid() is not None and second.running_pid() != old_pid
    assert process_start_time(old_pid) is None
    [found] = deployer.find_model_server(model_name="clf")
    assert found.is_running and found.config.model_uri == models.b
    assert found.predict(models.rows).tolist() == [1 - v for v in models.expected_a()]
