"""A change that needs new processes (a port, a host, the worker count) and fails: the
old processes keep serving, and the record still names them (their port)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from shipyard.deployers.local import LocalModelDeployer
from shipyard.errors import DeploymentError

from .conftest import Models, local_config


def test_a_new_port_that_is_taken_leaves_the_old_port_on_record(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    service = deployer.deploy_model(local_config(models.a), timeout=300)
    port = service.endpoint.port
    with socket.socket() as holder:
        # Held without SO_REUSEPORT: the new processes cannot bind it.
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(DeploymentError, match="previous processes keep serving"):
            deployer.deploy_model(local_config(models.a, port=taken), timeout=60)
    [found] = deployer.find_model_server(model_name="clf")
    assert (found.uuid, found.endpoint.port) == (service.uuid, port)
    assert found.is_running
    assert found.predict(models.rows).tolist() == models.expected_a()
