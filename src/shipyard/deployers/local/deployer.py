"""The ``local`` model deployer: model servers as background processes on this machine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from pydantic import Field

from shipyard.deployers.base import ModelDeployer
from shipyard.deployers.local.service import (
    LocalModelServer,
    LocalModelServerConfig,
    model_fingerprint,
)
from shipyard.errors import DeploymentError, ServiceError
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.local_daemon import LocalDaemonService
from shipyard.services.service import Service, ServiceConfig
from shipyard.stack.component import ComponentConfig
from shipyard.store import Store

__all__ = ["LocalModelDeployer", "LocalModelDeployerConfig", "discarded_unless_started"]


class LocalModelDeployerConfig(ComponentConfig):
    host: str = Field(default="127.0.0.1", description="Interface model servers bind to.")
    workers: int = Field(default=1, ge=1, description="Worker processes per model server.")


class LocalModelDeployer(ModelDeployer):
    """Runs each model server as a detached ``python -m shipyard.serving`` process."""

    FLAVOR_NAME = "local"
    CONFIG_CLASS = LocalModelDeployerConfig
    DEPLOYMENT_CONFIG = LocalModelServerConfig
    SERVICE_CLASS = LocalModelServer
    RESOLVES_SECRETS = True

    @property
    def settings(self) -> LocalModelDeployerConfig:
        return cast(LocalModelDeployerConfig, self.config)

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        config = cast(LocalModelServerConfig, config)
        _check_local_model(config)
        service = LocalModelServer(
            flavor=self.flavor,
            config=config,
            workers=config.workers or self.settings.workers,
            grpc_port=config.grpc_port,
            model_fingerprint=model_fingerprint(config.model_uri),
            endpoint=ServiceEndpoint(
                host=config.host or self.settings.host,
                port=config.port,
                health_check=HTTPHealthCheck(path="/v2/health/ready"),
            ),
        )
        self.register_service(service)
        what = f"the model '{config.model_name}' from {config.model_uri}"
        with (
            discarded_unless_started(self.store, service, what),
            self.change(service, "deploy", timeout, config, service.model_fingerprint),
        ):
            service.start(timeout=timeout)
        return service

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        server = cast(LocalModelServer, service)
        new = cast(LocalModelServerConfig, config)
        old = server.config
        if server.is_running and server.reloadable(old, new):
            try:
                server.reload(new, timeout=timeout)
            except DeploymentError as err:
                server.status.update(server.status.state, str(err))
                server.persist()
                raise
            server.check_status()
            return server
        return self._restart_with(server, old, new, timeout)

    def _restart_with(
        self,
        server: LocalModelServer,
        old: LocalModelServerConfig,
        new: LocalModelServerConfig,
        timeout: float,
    ) -> Service:
        """Apply a change a hot reload cannot make (ports, workers, host). A running
        server is replaced rolling (new processes ready before the old ones stop: no
        outage); a stopped one is started with the new settings. If the new config
        fails, the old processes keep serving and the record keeps the old config."""
        from shipyard.deployers.local._rolling import roll

        was_running = server.is_running
        self._apply(server, new)
        try:
            if was_running:
                roll(server, timeout)
            else:
                server.start(timeout=timeout)
        except ServiceError as err:
            self._apply(server, old)
            message = f"Updating the model server {server.uuid} to {new.model_uri} failed: {err}"
            if was_running:
                message += " The previous processes keep serving."
            server.status.update(server.status.state, message)
            server.persist()
            raise DeploymentError(message) from err
        server.check_status()
        return server

    def is_up_to_date(self, service: Service, config: ServiceConfig) -> bool:
        # The same path may hold a newly saved model: compare the files too.
        return super().is_up_to_date(service, config) and (
            not isinstance(service, LocalModelServer)
            or service.model_fingerprint == model_fingerprint(config.model_uri)
        )

    def fingerprint_of(self, config: ServiceConfig) -> str:
        return model_fingerprint(config.model_uri)

    def _apply(self, server: LocalModelServer, config: LocalModelServerConfig) -> None:
        server.config = config
        server.model_fingerprint = model_fingerprint(config.model_uri)
        server.workers = config.workers or self.settings.workers
        if config.port is not None:
            server.endpoint = server.endpoint.model_copy(update={"port": config.port})
        if config.grpc_port is not None:
            server.grpc_port = config.grpc_port
        if config.host is not None:
            server.endpoint = server.endpoint.model_copy(update={"host": config.host})

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, LocalModelServer):
            pid = service.running_pid()
            info.update(
                {
                    "HEALTH_CHECK_URL": f"{service.endpoint.url}/v2/health/ready"
                    if service.endpoint.url
                    else None,
                    "INVOCATIONS_URL": service.invocations_url,
                    "GRPC_PORT": None if service.grpc_port is None else str(service.grpc_port),
                    "SERVICE_PATH": str(service.run_path),
                    "LOG_FILE": str(service.log_path),
                    "DAEMON_PID": None if pid is None else str(pid),
                    # Where the token is, never the token: `curl -H "Authorization:
                    # Bearer $(cat FILE)"` reads it.
                    "AUTH_TOKEN_FILE": service.auth_token_file or None,
                }
            )
        return info


def _check_local_model(config: LocalModelServerConfig) -> None:
    """A local model path that does not exist is refused before a process is started."""
    uri = config.model_uri
    if "://" in uri and not uri.startswith("file://"):
        return
    path = Path(uri.removeprefix("file://"))
    if not path.exists():
        raise DeploymentError(
            f"Cannot deploy the model '{config.model_name}': {path} does not exist. Save a "
            "model there first (`shipyard.save_model(model, path)`), or give its URI."
        )


@contextlib.contextmanager
def discarded_unless_started(
    store: Store, service: LocalDaemonService, what: str
) -> Iterator[None]:
    """Around the first start of ``service``: if it fails, the server is removed, process
    and record, and DeploymentError says why deploying ``what`` failed.

    A server that never ran is no use in the registry (it would only have to be deleted
    by hand): the error carries the server's own reason, and nothing is left behind."""
    try:
        yield
    except ServiceError as err:
        reason = _failure_reason(service, err)
        service.delete(timeout=10.0, force=True)
        store.delete_service(service.uuid)
        raise DeploymentError(
            f"Deploying {what} failed: the server failed to start: {reason}"
        ) from err


def _failure_reason(service: LocalDaemonService, err: ServiceError) -> str:
    """The server's own one-line reason (its last ``Error:`` log line), else ``err``."""
    try:
        lines = service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("Error: "):
            return line.removeprefix("Error: ").removeprefix("The model server could not start: ")
    # No line of its own (it never got that far): the first line of what we saw.
    return str(err).splitlines()[0].removeprefix(f"Service {service.uuid}: ")
