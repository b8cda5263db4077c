"""``service_type`` is used, not ignored: it filters ``find_model_server`` and is checked
by ``deploy_model`` before anything is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.errors import ConfigError
from shipyard.services import Service

from .conftest import Models


class OtherServer(Service):
    """A kind of server the local deployer does not run."""


def test_service_type_filters_and_is_checked(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    config = LocalDeploymentConfig(model_uri=models.a, model_name="typed", pipeline_name="p")
    with pytest.raises(ConfigError, match="runs LocalModelServer servers, not OtherServer"):
        deployer.deploy_model(config, service_type=OtherServer)
    assert deployer.find_model_server() == []  # refused before anything was started
    service = deployer.deploy_model(config, service_type=LocalModelServer, timeout=300)
    try:
        path = f"{LocalModelServer.__module__}:LocalModelServer"
        for wanted in (LocalModelServer, Service, path):
            found = deployer.find_model_server(model_name="typed", service_type=wanted)
            assert [s.uuid for s in found] == [service.uuid], wanted
        assert deployer.find_model_server(model_name="typed", service_type=OtherServer) == []
        with pytest.raises(ConfigError, match="service_type must be a Service class"):
            deployer.find_model_server(service_type=int)  # type: ignore[arg-type]
    finally:
        deployer.delete_model_server(service.uuid, timeout=60, force=True)
