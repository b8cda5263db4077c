"""The ``mlflow`` model deployer: MLflow models, by registry name or URI, as local servers.

Every deploy first pins the model (``models:/iris@champion`` -> ``models:/iris/3``) and
fetches it once; the server is given that version, so a restart never drifts and the
resolved version is on the Service (``models list``, ``describe``). Deploying a new
version updates the server in place with either engine: same UUID, same URL, the old
version serving until the new one has answered a health check and a prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from shipyard.deployers._v2 import READY_PATH
from shipyard.deployers.base import DeployerSettings, ModelDeployer
from shipyard.deployers.local.deployer import daemon_info, discarded_unless_started
from shipyard.deployers.mlflow._checks import check_engine, check_flavor, check_remote_trust
from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig, MLFlowModelDeployerConfig
from shipyard.deployers.mlflow.service import (
    MLFlowDeploymentService,
    MLFlowShipyardServer,
    RegistryPin,
)
from shipyard.errors import DeploymentError
from shipyard.models._uri import uri_stem
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.service import Service, ServiceConfig
from shipyard.serving.fingerprint import model_fingerprint

__all__ = ["MLFlowModelDeployer"]

MLFlowServer = MLFlowShipyardServer | MLFlowDeploymentService

#: Config fields an in-place update may change; others (engine, ports...) need new processes.
_RESTART_FIELDS = (
    "engine",
    "env_manager",
    "host",
    "port",
    "grpc_port",
    "workers",
    "timeout",
    "auth",
)
#: What the socket keeper of an ``engine: mlflow`` server changes in place (new workers
#: on the same socket): the worker count and the request timeout (auth: MLflow has none).
_KEEPER_FIELDS = {"workers", "timeout", "auth"}


class MLFlowModelDeployer(ModelDeployer):
    """Serves MLflow models locally, with MLflow's scoring server or Shipyard's."""

    FLAVOR_NAME = "mlflow"
    CONFIG_CLASS = MLFlowModelDeployerConfig
    DEPLOYMENT_CONFIG = MLFlowDeploymentConfig
    #: Credentials in a model URI or a tracking URI go into the secrets store; the
    #: servers get them resolved in their environment (``mlflow_environment``).
    RESOLVES_SECRETS = True

    settings = DeployerSettings(MLFlowModelDeployerConfig)

    # -- resolving what to serve -----------------------------------------------------------

    def _coerce_config(self, config: ServiceConfig | dict[str, Any]) -> ServiceConfig:
        # The name continuous deployment matches on (pipeline, step, model name) must be
        # the same before and after the config is resolved: derive it from the source.
        coerced = cast(MLFlowDeploymentConfig, super()._coerce_config(config))
        source = coerced.source_uri()
        return coerced.model_copy(
            update={"model_uri": source, "model_name": coerced.model_name or uri_stem(source)}
        )

    def _keep_credentials_out(self, config: ServiceConfig) -> ServiceConfig:
        config = cast(MLFlowDeploymentConfig, super()._keep_credentials_out(config))
        return config.model_copy(update={"tracking_uri": self._stored_uri(config.tracking_uri)})

    def _tracking(self, config: MLFlowDeploymentConfig) -> str:
        """The tracking URI as stored (the deployer's setting arrives resolved: its
        credentials go into the secrets store before a pin records it)."""
        from shipyard.models._mlflow_uri import tracking_uri_or_default

        return self._stored_uri(
            tracking_uri_or_default(config.tracking_uri or self.settings.tracking_uri)
        )

    def _prepare(self, config: ServiceConfig) -> tuple[MLFlowDeploymentConfig, RegistryPin]:
        """The config completed (URI, name), its pin, and the model fetched and checked."""
        config = cast(MLFlowDeploymentConfig, config)
        check_engine(config, config.host or self.settings.host)
        source = config.source_uri()
        if not source:
            raise DeploymentError(
                "Nothing to deploy: give model_uri (models:/name/version, runs:/..., a path) "
                "or registry_model_name."
            )
        from shipyard.models._mlflow_uri import download_mlflow_model, is_mlflow_uri

        tracking = self._tracking(config)
        if is_mlflow_uri(source):
            model_dir, ref = download_mlflow_model(source, self._usable_uri(tracking))
            pin = RegistryPin(
                source_uri=source,
                pinned_uri=ref.pinned_uri,
                tracking_uri=tracking,
                registered_model_name=ref.registered_name,
                model_version=ref.version,
                alias=ref.alias,
                stage=ref.stage,
                model_dir=str(model_dir),
            )
        else:
            from shipyard.models import resolve_model_uri

            model_dir = resolve_model_uri(self._usable_uri(source))
            check_remote_trust(source, model_dir, config)
            pin = RegistryPin(
                source_uri=source,
                pinned_uri=str(model_dir),
                model_dir=str(model_dir),
                fingerprint=model_fingerprint(str(model_dir)),
            )
        check_flavor(model_dir, config.engine, source)
        updates = {"model_uri": source, "model_name": config.model_name or uri_stem(source)}
        return config.model_copy(update=updates), pin

    # -- the deployer's hooks ----------------------------------------------------------------

    def is_up_to_date(self, service: Service, config: ServiceConfig) -> bool:
        # An alias or stage that moved is a new model under the same config.
        if not isinstance(service, MLFlowShipyardServer | MLFlowDeploymentService):
            return False
        new, pin = self._prepare(config)
        return service.config == new and service.registry.pinned_uri == pin.pinned_uri

    def fingerprint_of(self, config: ServiceConfig) -> str:
        """The identity of the model ``config`` names now (``RegistryPin.identity``): the
        pinned ``models:/name/version``, or a local model's file fingerprint. Nothing is
        downloaded: an alias is only resolved."""
        from shipyard.models._mlflow_uri import is_mlflow_uri, pin_mlflow_uri

        config = cast(MLFlowDeploymentConfig, config)
        source = config.source_uri()
        if is_mlflow_uri(source):
            return pin_mlflow_uri(source, self._usable_uri(self._tracking(config))).pinned_uri
        from shipyard.models import resolve_model_uri

        path = str(resolve_model_uri(self._usable_uri(source)))
        return model_fingerprint(path) or path

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        new, pin = self._prepare(config)
        service = self.new_service(new, pin)
        self.register_service(service)
        what = f"the MLflow model {pin.pinned_uri} (engine {new.engine})"
        with (
            discarded_unless_started(self.store, service, what),
            self.change(service, "deploy", timeout, new, pin.identity),
        ):
            service.start(timeout=timeout)
        return service

    def bind_service(self, service: Service) -> None:
        """Give ``service`` this registry (saved on its next change) and its secrets."""
        self._bind(service)

    def new_service(self, config: MLFlowDeploymentConfig, pin: RegistryPin) -> MLFlowServer:
        host = config.host or self.settings.host
        workers = config.workers or self.settings.workers
        if config.engine == "shipyard":
            return MLFlowShipyardServer(
                flavor=self.flavor,
                config=config,
                registry=pin,
                workers=workers,
                grpc_port=config.grpc_port,
                endpoint=ServiceEndpoint(
                    host=host,
                    port=config.port,
                    health_check=HTTPHealthCheck(path=READY_PATH),
                ),
            )
        return MLFlowDeploymentService(
            flavor=self.flavor,
            config=config,
            registry=pin,
            workers=workers,
            endpoint=ServiceEndpoint(
                host=host, port=config.port, health_check=HTTPHealthCheck(path="/ping")
            ),
        )

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        """The least disruptive way to serve ``config``: a hot reload (same processes or
        same socket), a rolling replacement (``_update.switch``, ``_roll``), and only
        where neither can work, stop-then-start (``_update.replace``)."""
        from shipyard.deployers.mlflow._update import can_switch, replace, switch

        server = cast(MLFlowServer, service)
        new, pin = self._prepare(config)
        old = server.config
        changed = {key for key in _RESTART_FIELDS if getattr(old, key) != getattr(new, key)}
        workers = new.workers or self.settings.workers
        if not server.is_running:
            if isinstance(server, MLFlowShipyardServer) and new.engine == "shipyard":
                return self._roll(server, new, pin, timeout)
            return replace(self, server, new, pin, timeout)
        if isinstance(server, MLFlowDeploymentService) and new.engine == "mlflow":
            if server.hot_reloadable and changed <= _KEEPER_FIELDS:
                return self._reload(server, new, pin, timeout, workers)
        elif isinstance(server, MLFlowShipyardServer) and new.engine == "shipyard":
            if changed:
                return self._roll(server, new, pin, timeout)
            return self._reload(server, new, pin, timeout, workers)
        if can_switch(server, new, new.host or self.settings.host):
            return switch(self, server, new, pin, timeout)
        return replace(self, server, new, pin, timeout)

    def _reload(
        self,
        server: MLFlowServer,
        new: MLFlowDeploymentConfig,
        pin: RegistryPin,
        timeout: float,
        workers: int,
    ) -> Service:
        old_pin = server.registry
        try:
            if isinstance(server, MLFlowDeploymentService):
                server.reload(new, pin, timeout, workers)
            else:
                # Recorded before the server is told: an interrupted reload is reconciled
                # against both pins (``MLFlowShipyardServer.served_model``).
                server.pending_registry = pin
                server.persist()
                server.registry = pin  # what served_model_uri gives the reload
                server.reload(new, timeout=timeout)
        except DeploymentError as err:
            server.registry = old_pin
            if isinstance(server, MLFlowShipyardServer):
                server.pending_registry = None
            message = str(err)
            if pin.pinned_uri != new.model_uri:  # say which version the alias named
                message = message.replace(new.model_uri, f"{new.model_uri} ({pin.pinned_uri})")
            server.status.update(server.status.state, message)
            server.persist()
            raise DeploymentError(message) from err
        server.registry = pin
        if isinstance(server, MLFlowShipyardServer):
            server.pending_registry = None
        server.persist()
        server.check_status()
        return server

    def _roll(
        self,
        server: MLFlowShipyardServer,
        new: MLFlowDeploymentConfig,
        pin: RegistryPin,
        timeout: float,
    ) -> Service:
        """Workers, ports or host of an ``engine: shipyard`` server: the local flavor's
        rolling replacement (the new processes ready before the old ones stop, the URL
        answering throughout); on failure the old processes keep serving, as recorded."""
        from shipyard.deployers.local._rolling import restart_with

        server.pending_registry = pin
        server.persist()

        def apply() -> Callable[[], None]:
            restore_settings = server.take_settings(new, self.settings.workers)
            old_pin, server.registry = server.registry, pin

            def restore() -> None:
                restore_settings()
                server.registry, server.pending_registry = old_pin, None

            return restore

        restart_with(server, pin.pinned_uri, timeout, apply)
        server.pending_registry = None
        server.persist()
        server.check_status()
        return server

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, MLFlowShipyardServer | MLFlowDeploymentService):
            pin = service.registry
            info.update(
                {
                    "ENGINE": service.config.engine,
                    "REGISTRY_MODEL_NAME": pin.registered_model_name or None,
                    "REGISTRY_MODEL_VERSION": pin.model_version or None,
                    "REGISTRY_MODEL_ALIAS": pin.alias or None,
                    "REGISTRY_MODEL_STAGE": pin.stage or None,
                    "SERVED_MODEL_URI": pin.pinned_uri,
                    "TRACKING_URI": pin.tracking_uri or None,
                    # engine mlflow keeps the token for a switch; MLflow's server ignores it.
                    "AUTH_TOKEN_FILE": service.auth_token_file or None,
                }
            )
            info.update(daemon_info(service))
        return info
