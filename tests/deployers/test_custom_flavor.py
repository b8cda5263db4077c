"""A custom flavor built here, registered with --source, put in a stack and deployed with."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.deployers import ModelDeployer
from shipyard.errors import ConfigError
from shipyard.services import Service

from .conftest import Models
from .tiny_flavor import TinyDeployer, TinyServer, TinyServerConfig

SOURCE = f"{TinyDeployer.__module__}:TinyDeployer"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_a_custom_flavor_deploys_finds_updates_and_round_trips(home: Path, models: Models) -> None:
    assert "Registered model deployer flavor 'tiny'" in _cli(
        "model-deployer", "flavor", "register", SOURCE
    )
    assert "tiny" in _cli("model-deployer", "flavor", "list")
    try:
        _cli("model-deployer", "register", "t", "--flavor", "tiny", "--colour=red")
    except ConfigError as err:
        assert "unknown key 'colour'; allowed keys: host" in str(err)
    else:
        raise AssertionError("an unknown config key must be refused")
    _cli("model-deployer", "register", "t", "--flavor", "tiny", "--host=127.0.0.1")
    _cli(
        "stack",
        "register",
        "tiny-stack",
        "-a",
        "default",
        "--orchestrator",
        "default",
        "-d",
        "t",
        "--set",
    )

    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, TinyDeployer)
    service = deployer.deploy_model(
        TinyServerConfig(model_uri=models.a, model_name="m", greeting="hello"), timeout=120
    )
    assert isinstance(service, TinyServer)
    assert service.predict(models.rows) == models.expected_a()
    assert httpx.get(f"{service.endpoint.url}/health").json() == {"greeting": "hello"}

    # JSON round trip: the same class, the same live process.
    again = Service.from_json(service.to_json())
    assert type(again) is TinyServer
    assert again.model_dump() == service.model_dump()
    assert again.check_status()[0].value == "active"
    assert again.predict(models.rows) == models.expected_a()

    # Continuous deployment through the base class: same UUID, same URL.
    updated = deployer.deploy_model(
        TinyServerConfig(model_uri=models.b, model_name="m", greeting="hello"), timeout=120
    )
    assert (updated.uuid, updated.prediction_url) == (service.uuid, service.prediction_url)
    assert updated.predict(models.rows) == [1 - v for v in models.expected_a()]

    listed = _cli("model-deployer", "models", "list", "--model", "m")
    assert service.uuid[:8] in listed and "tiny" in listed  # short UUIDs at 80 columns
    _cli("model-deployer", "models", "delete", service.uuid[:8], "--yes")
    assert deployer.find_model_server() == []
