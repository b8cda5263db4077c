"""The ``local`` model deployer: model servers as background processes on this machine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from pydantic import Field

from shipyard.deployers._v2 import READY_PATH, health_check_url
from shipyard.deployers.base import DeployerSettings, ModelDeployer
from shipyard.deployers.local._config import LocalModelServerConfig, reloadable
from shipyard.deployers.local._rolling import restart_with
from shipyard.deployers.local._snapshot import (
    Snapshot,
    digest_in_path,
    digest_of_uri,
    pin,
    release,
    release_all,
)
from shipyard.deployers.local.service import LocalModelServer
from shipyard.errors import DeploymentError, ServiceError, ShipyardError
from shipyard.models._detect import detect_model
from shipyard.models._trust import check_trust
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.local_daemon import LocalDaemonService
from shipyard.services.service import Service, ServiceConfig
from shipyard.stack.component import ComponentConfig
from shipyard.store import Store

__all__ = [
    "LocalModelDeployer",
    "LocalModelDeployerConfig",
    "daemon_info",
    "discarded_unless_started",
]


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

    settings = DeployerSettings(LocalModelDeployerConfig)

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        config = cast(LocalModelServerConfig, config)
        _check_local_model(config)
        service = LocalModelServer(
            flavor=self.flavor,
            config=config,
            workers=config.workers or self.settings.workers,
            grpc_port=config.grpc_port,
            endpoint=ServiceEndpoint(
                host=config.host or self.settings.host,
                port=config.port,
                health_check=HTTPHealthCheck(path=READY_PATH),
            ),
        )
        self.report("copying the model into SHIPYARD_HOME (the server serves that copy)")
        snapshot = self._pin(config, service.uuid)
        service.model_snapshot = str(snapshot.path)
        service.model_fingerprint = snapshot.digest
        self.register_service(service)
        what = f"the model '{config.model_name}' from {config.model_uri}"
        try:
            with (
                discarded_unless_started(self.store, service, what),
                self.change(service, "deploy", timeout, config, service.model_fingerprint),
            ):
                self.report(f"starting the model server ({service.workers} worker(s))")
                service.start(timeout=timeout, report=self.report)
        except BaseException:
            # Failed or interrupted (Ctrl-C) before the server was ready: its pinned copy
            # goes with it.
            release_all(service.uuid)
            raise
        return service

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        server = cast(LocalModelServer, service)
        new = cast(LocalModelServerConfig, config)
        old = server.config
        # Snapshots an earlier, interrupted change left behind go; the one served stays.
        release_all(server.uuid, keep=frozenset({server.model_fingerprint}))
        old_pin = (server.model_snapshot, server.model_fingerprint)
        workers = self.settings.workers
        self.report("copying the model into SHIPYARD_HOME (the server serves that copy)")
        snapshot = self._pin(new, server.uuid)
        server.model_snapshot = str(snapshot.path)
        try:
            if server.is_running and reloadable(old, new):
                self.report(
                    "loading the new model in every worker; health check before the switch "
                    "(the old model serves meanwhile)"
                )
                try:
                    server.reload(new, timeout=timeout)
                except DeploymentError as err:
                    server.status.update(server.status.state, str(err))
                    raise
                self.report("switched to the new model")
                server.check_status()
            else:
                self.report(
                    "starting new server processes with the new settings; health check "
                    "before the switch (the old ones serve meanwhile)"
                )
                # A running server is replaced rolling (new processes ready before the old
                # ones stop); a stopped one is started. On failure the old processes keep
                # serving, and the record its old settings.
                restart_with(
                    server, new.model_uri, timeout, lambda: server.take_settings(new, workers)
                )
                server.check_status()
                self.report("switched to the new processes")
        except BaseException:
            # The old model keeps serving: the record keeps its copy. The new one is
            # released by the next change (the server may yet report it: see reconcile).
            server.model_snapshot, server.model_fingerprint = old_pin
            server.persist()
            raise
        server.model_fingerprint = snapshot.digest
        server.persist()
        if old_pin[1] != snapshot.digest:
            release(old_pin[1], server.uuid)
        return server

    def is_up_to_date(self, service: Service, config: ServiceConfig) -> bool:
        # The same path may hold a newly saved model: compare the files too.
        return super().is_up_to_date(service, config) and (
            not isinstance(service, LocalModelServer)
            or (
                bool(service.model_snapshot)
                and service.model_fingerprint == self.fingerprint_of(config)
            )
        )

    def fingerprint_of(self, config: ServiceConfig) -> str:
        # The content digest of what a deploy would pin ("" where it cannot be read:
        # the deploy itself then says why).
        try:
            return digest_of_uri(self._usable_uri(config.model_uri))
        except (ShipyardError, OSError):
            return ""

    def _pin(self, config: LocalModelServerConfig, owner: str) -> Snapshot:
        """Pin ``config``'s model for ``owner``; a model that cannot be fetched or read
        is a DeploymentError naming it (nothing was started)."""
        try:
            snapshot = pin(self._usable_uri(config.model_uri), owner)
            # The server loads the local copy, so the remote URI's trust rule is applied
            # here, to what was fetched: a copy must not launder an untrusted pickle.
            check_trust(
                config.model_uri,
                snapshot.path,
                detect_model(snapshot.path)[1],
                trusted=config.trusted,
                sha256=config.sha256,
            )
            return snapshot
        except DeploymentError:
            raise
        except ShipyardError as err:
            raise DeploymentError(
                f"Deploying the model '{config.model_name}' from {config.model_uri} failed: {err}"
            ) from err

    def perform_delete_model(self, service: Service, timeout: float, force: bool) -> None:
        super().perform_delete_model(service, timeout, force)
        release_all(service.uuid)

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, LocalModelServer):
            info.update(daemon_info(service))
            info.update(
                {
                    "INVOCATIONS_URL": service.invocations_url,
                    "GRPC_PORT": None if service.grpc_port is None else str(service.grpc_port),
                    # What a restart serves: the copy pinned at deploy, and its digest.
                    "MODEL_SNAPSHOT": service.model_snapshot or None,
                    "MODEL_SHA256": digest_in_path(service.model_snapshot) or None,
                    # Where the token is, never the token: `curl -H "Authorization:
                    # Bearer $(cat FILE)"` reads it.
                    "AUTH_TOKEN_FILE": service.auth_token_file or None,
                }
            )
        return info


def daemon_info(service: LocalDaemonService) -> dict[str, str | None]:
    """What ``models describe`` shows of a server run as a local daemon: its health
    check, run directory, log and supervisor's pid."""
    pid = service.running_pid()
    return {
        "HEALTH_CHECK_URL": health_check_url(service.endpoint),
        "SERVICE_PATH": str(service.run_path),
        "LOG_FILE": str(service.log_path),
        "DAEMON_PID": None if pid is None else str(pid),
    }


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
    except BaseException:
        # Interrupted (Ctrl-C) before the server was ready: nothing half-started is left
        # behind either, as for a server that failed to start.
        with contextlib.suppress(Exception):
            service.delete(timeout=10.0, force=True)
            store.delete_service(service.uuid)
        raise


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
