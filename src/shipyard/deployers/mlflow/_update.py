"""Changes of an ``mlflow`` model server that need new processes: another engine, or an
``engine: mlflow`` server's port or host.

``switch`` is a rolling replacement: a server of the new kind (the socket keeper, or
Shipyard's supervisor) is started beside the running one on the same UUID and run dir,
with the local flavor's ``roll``. On the same host and port it is handed the old server's
listening sockets (both kinds answer ``handover`` and take over with
``SHIPYARD_TAKEOVER_SOCKET``), so the URL answers throughout and nothing queued on the
port is lost; only when the new one reports every worker ready does the record switch to
it and the old one drain and stop. On a new port the new server is up before the old
one stops (clients of the old URL must move; in-flight requests finish). On failure the
old server keeps serving, untouched.

``replace`` is what is left, stop-then-start: a change of ``env_manager`` (``mlflow models
serve`` in an environment MLflow builds binds its own port, so there is no socket to hand
over), a server that is not running, or a new host on the same port (the old server holds
the port on the old address, so the new one cannot bind beside it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.deployers.local._rolling import failed_update, roll
from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig
from shipyard.deployers.mlflow.service import (
    MLFlowDeploymentService,
    MLFlowShipyardServer,
    RegistryPin,
)
from shipyard.errors import ServiceError
from shipyard.services.intent import confirm_intent

if TYPE_CHECKING:
    from shipyard.deployers.mlflow.deployer import MLFlowModelDeployer

__all__ = ["can_switch", "replace", "switch"]

MLFlowServer = MLFlowShipyardServer | MLFlowDeploymentService


def can_switch(server: MLFlowServer, new: MLFlowDeploymentConfig, host: str) -> bool:
    """Whether ``server`` can be replaced by one for ``new`` (on ``host``) while it serves:
    both are servers with a control socket that hand over their sockets, and a new host
    comes with a new port."""
    runs_supervisor = isinstance(server, MLFlowShipyardServer) or server.hot_reloadable
    new_supervisor = new.engine == "shipyard" or new.env_manager == "local"
    same_port = not new.port or new.port == server.endpoint.port
    return (
        server.is_running
        and bool(server.control_socket)
        and runs_supervisor
        and new_supervisor
        and not (host != server.endpoint.host and same_port)
    )


def _replacement(
    deployer: MLFlowModelDeployer,
    server: MLFlowServer,
    new: MLFlowDeploymentConfig,
    pin: RegistryPin,
) -> MLFlowServer:
    """A server of ``new``'s kind that takes ``server``'s place: same UUID and run dir,
    same port unless ``new`` names one."""
    replacement = deployer.new_service(new, pin)
    replacement.uuid = server.uuid
    replacement.run_dir = server.run_dir
    replacement.endpoint = replacement.endpoint.model_copy(
        update={"port": new.port or server.endpoint.port}
    )
    # The change under way goes with the record: a killed caller leaves it to reconcile.
    replacement.intent = server.intent
    replacement.admin_state = server.admin_state
    replacement.status = server.status.model_copy()
    return replacement


def switch(
    deployer: MLFlowModelDeployer,
    server: MLFlowServer,
    new: MLFlowDeploymentConfig,
    pin: RegistryPin,
    timeout: float,
) -> MLFlowServer:
    """The rolling replacement of ``server`` by a server for ``new`` (see the module)."""

    replacement = _replacement(deployer, server, new, pin)
    # ``roll`` hands over from the socket of the server it replaces.
    replacement.control_socket = server.control_socket
    if isinstance(replacement, MLFlowShipyardServer):
        replacement._assign_ports()  # its gRPC port (a new one: the keeper has none)
    # Bound, not saved: ``roll`` saves it (the record switches to the new server) at the
    # moment the pid file names the new processes, once they are ready.
    deployer.bind_service(replacement)
    try:
        roll(replacement, timeout)
    except ServiceError as err:
        message = (
            f"Updating the model server {server.uuid} to {pin.pinned_uri} (engine "
            f"{new.engine}) failed: {err}"
        )
        raise failed_update(server, message) from err
    replacement.check_status()
    return _handed_over(server, replacement)


def replace(
    deployer: MLFlowModelDeployer,
    server: MLFlowServer,
    new: MLFlowDeploymentConfig,
    pin: RegistryPin,
    timeout: float,
) -> MLFlowServer:
    """Stop-then-start (see the module): a server of the new kind on the same UUID and
    port, started once the old one has stopped (the URL refuses connections meanwhile);
    the old one back on failure."""
    was_running = server.is_running
    server.stop(timeout=timeout)
    replacement = _replacement(deployer, server, new, pin)
    deployer.register_service(replacement)
    try:
        replacement.start(timeout=timeout)
    except ServiceError as err:
        replacement.stop(timeout=10.0, force=True)
        deployer.register_service(server)
        message = f"Updating the model server {server.uuid} to {pin.pinned_uri} failed: {err}"
        if was_running:
            server.start(timeout=timeout)
            message += " The previous model was started again."
        raise failed_update(server, message) from err
    return _handed_over(server, replacement)


def _handed_over(server: MLFlowServer, replacement: MLFlowServer) -> MLFlowServer:
    """Make ``replacement`` the record: the old object (which the caller confirms the
    change on) must not write its stale state over it, in the registry or run dir."""
    server.bind(None)
    server.intent = None
    confirm_intent(replacement)
    return replacement
