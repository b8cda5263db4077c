"""The ``ray`` model deployer: each Service is one Ray Serve application on a Ray cluster.

``address`` says which cluster: ``auto`` (the one this machine runs, as Ray finds it),
``host:port`` or ``ray://host:10001`` (Ray Client), or ``local``: a head that Shipyard
starts on first use and owns, in its own process group, stopped by that group when the
last model server of the deployer is deleted (never by ``ray stop``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, cast

from pydantic import Field

from shipyard.deployers._v2 import health_check_url, served_name
from shipyard.deployers.base import DeployerSettings, ModelDeployer
from shipyard.deployers.ray._cluster import RayNode, start_head
from shipyard.deployers.ray.service import RayDeploymentConfig, RayModelServer
from shipyard.errors import DeploymentError
from shipyard.services.service import Service, ServiceConfig
from shipyard.stack.component import ComponentConfig

__all__ = ["RayModelDeployer", "RayModelDeployerConfig"]

_APP_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class RayModelDeployerConfig(ComponentConfig):
    address: str = Field(
        default="auto",
        description="Ray cluster: auto, host:port, ray://host:10001, or local (a head "
        "Shipyard starts and owns).",
    )
    http_host: str = Field(
        default="127.0.0.1", description="Interface of Serve's HTTP proxy, if we start Serve."
    )
    http_port: int = Field(
        default=8000, ge=1, le=65535, description="Port of Serve's proxy, if we start Serve."
    )
    grpc_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of Serve's gRPC proxy (Open Inference Protocol), if we start "
        "Serve; none by default: Ray binds it on every interface ([::]), not loopback.",
    )
    proxy_location: Literal["HeadOnly", "EveryNode", "Disabled"] = Field(
        default="HeadOnly", description="Where Serve runs HTTP proxies, if we start Serve."
    )
    local_num_cpus: float | None = Field(
        default=None, ge=0, description="address=local: CPUs of the head; default all."
    )
    local_object_store_memory: int | None = Field(
        default=512 << 20, ge=78 << 20, description="address=local: object store bytes."
    )


class RayModelDeployer(ModelDeployer):
    """Deploys models as Ray Serve applications running Shipyard's data plane."""

    FLAVOR_NAME = "ray"
    CONFIG_CLASS = RayModelDeployerConfig
    DEPLOYMENT_CONFIG = RayDeploymentConfig
    #: Credentials in a model URI go into the secrets store; the replicas get their values
    #: through the cluster's secrets (``shipyard._ray.secrets``), never through Ray's arguments.
    RESOLVES_SECRETS = True

    settings = DeployerSettings(RayModelDeployerConfig)

    # -- the cluster -----------------------------------------------------------------------

    @property
    def _head_file(self) -> Path:
        from shipyard.config import get_settings

        return get_settings().home / "ray" / f"{self.id}.json"

    def local_head(self) -> RayNode | None:
        """The head this deployer started (``address=local``), if it still runs."""
        node = RayNode.load(self._head_file)
        return node if node is not None and node.alive else None

    def cluster_address(self) -> str:
        """The address drivers connect to; for ``local``, the owned head (started now if
        it does not run)."""
        if self.settings.address != "local":
            return self.settings.address
        node = self.local_head()
        if node is None:
            node = start_head(
                num_cpus=self.settings.local_num_cpus,
                object_store_memory=self.settings.local_object_store_memory,
                log_path=self._head_file.with_suffix(".log"),
            )
            node.save(self._head_file)
        return node.address

    def stop_local_head(self) -> None:
        """Stop the owned head's process group (nothing if ``address`` is not local)."""
        node = RayNode.load(self._head_file)
        if node is not None:
            from shipyard._ray.connect import disconnect

            disconnect()
            node.stop()
            node.remove_files()
            self._head_file.unlink(missing_ok=True)

    # -- what a flavor implements -------------------------------------------------------------

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        config = cast(RayDeploymentConfig, config)
        config.serve_options()  # a contradictory config fails before anything runs
        service = RayModelServer(
            flavor=self.flavor,
            config=config,
            address=self.cluster_address(),
            http_host=self.settings.http_host,
            http_port=self.settings.http_port,
            proxy_location=self.settings.proxy_location,
            grpc_port=self.settings.grpc_port,
        )
        name = _APP_NAME.sub("-", served_name(config.model_name))
        service.app_name = f"shipyard-{name}-{service.uuid[:8]}"
        service.route_prefix = config.route_prefix or f"/{service.app_name}"
        service.admin_state = service.admin_state.ACTIVE
        self.register_service(service)
        try:
            service.deploy(timeout)
        except DeploymentError as err:
            # Nothing half-deployed stays behind: not the application, not the record.
            service.stop(timeout=timeout)
            self.store.delete_service(service.uuid)
            raise DeploymentError(
                f"Deploying the model '{config.model_name}' from {config.model_uri} on Ray "
                f"failed: {err}"
            ) from err
        return service

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        """Serve's rolling update, same application and route: new replicas start beside
        the old, which serve until the new are ready. If the new model fails, the old
        config is deployed again (its replicas kept serving throughout)."""
        server = cast(RayModelServer, service)
        new = cast(RayDeploymentConfig, config)
        new.serve_options()
        old = server.config
        if new.route_prefix not in (None, server.route_prefix):
            server.route_prefix = new.route_prefix
        server.config = new
        server.admin_state = server.admin_state.ACTIVE
        try:
            server.deploy(timeout)
        except DeploymentError as err:
            server.config = old
            message = (
                f"Updating the model server {server.uuid} to {new.model_uri} failed: {err}. "
                "The previous model keeps serving."
            )
            try:
                server.deploy(timeout)
            except DeploymentError as again:
                message += f" Restoring it failed too: {again}"
            server.status.update(server.status.state, message)
            server.persist()
            raise DeploymentError(message) from err
        return server

    def perform_delete_model(self, service: Service, timeout: float, force: bool) -> None:
        super().perform_delete_model(service, timeout, force)
        others = [
            r for r in self.store.find_services(deployer_id=self.id) if r.uuid != service.uuid
        ]
        if self.settings.address == "local" and not others:
            self.stop_local_head()

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, RayModelServer):
            info.update(
                {
                    "RAY_ADDRESS": service.address,
                    "SERVE_APPLICATION": service.app_name,
                    "ROUTE_PREFIX": service.route_prefix,
                    "GRPC_ADDRESS": service.grpc_address,
                    "GRPC_METADATA": f"application={service.app_name}"
                    if service.grpc_address
                    else None,
                    "INVOCATIONS_URL": service.invocations_url,
                    "HEALTH_CHECK_URL": health_check_url(service.endpoint),
                }
            )
        return info
