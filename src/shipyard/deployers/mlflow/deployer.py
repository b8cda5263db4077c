"""The ``mlflow`` model deployer: MLflow models, by registry name or URI, as local servers.

Every deploy first pins the model (``models:/iris@champion`` -> ``models:/iris/3``) and
fetches it once; the server is given that version, so a restart never drifts and the
resolved version is on the Service (``models list``, ``describe``). Deploying a new
version updates the server in place with either engine: same UUID, same URL, the old
version serving until the new one has answered a health check and a prediction.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import yaml

from shipyard.deployers.base import ModelDeployer
from shipyard.deployers.local.deployer import discarded_unless_started
from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig, MLFlowModelDeployerConfig
from shipyard.deployers.mlflow.service import (
    MLFlowDeploymentService,
    MLFlowShipyardServer,
    RegistryPin,
    mlflow_environment,
)
from shipyard.errors import ConfigError, DeploymentError, MissingDependencyError, ServiceError
from shipyard.models._uri import uri_stem
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.intent import confirm_intent
from shipyard.services.service import Service, ServiceConfig
from shipyard.serving.fingerprint import model_fingerprint

__all__ = ["MLFlowModelDeployer"]

MLFlowServer = MLFlowShipyardServer | MLFlowDeploymentService

#: Config fields an in-place update may change; others (engine, ports...) need a restart.
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


class MLFlowModelDeployer(ModelDeployer):
    """Serves MLflow models locally, with MLflow's scoring server or Shipyard's."""

    FLAVOR_NAME = "mlflow"
    CONFIG_CLASS = MLFlowModelDeployerConfig
    DEPLOYMENT_CONFIG = MLFlowDeploymentConfig

    @property
    def settings(self) -> MLFlowModelDeployerConfig:
        return cast(MLFlowModelDeployerConfig, self.config)

    # -- resolving what to serve -----------------------------------------------------------

    def _coerce_config(self, config: ServiceConfig | dict[str, Any]) -> ServiceConfig:
        # The name continuous deployment matches on (pipeline, step, model name) must be
        # the same before and after the config is resolved: derive it from the source.
        coerced = cast(MLFlowDeploymentConfig, super()._coerce_config(config))
        source = coerced.source_uri()
        return coerced.model_copy(
            update={"model_uri": source, "model_name": coerced.model_name or uri_stem(source)}
        )

    def _prepare(self, config: ServiceConfig) -> tuple[MLFlowDeploymentConfig, RegistryPin]:
        """The config completed (URI, name), its pin, and the model fetched and checked."""
        config = cast(MLFlowDeploymentConfig, config)
        _check_engine(config)
        source = config.source_uri()
        if not source:
            raise DeploymentError(
                "Nothing to deploy: give model_uri (models:/name/version, runs:/..., a path) "
                "or registry_model_name."
            )
        from shipyard.models._mlflow_uri import download_mlflow_model, is_mlflow_uri

        tracking = config.tracking_uri or self.settings.tracking_uri
        if is_mlflow_uri(source):
            model_dir, ref = download_mlflow_model(source, tracking)
            pin = RegistryPin(
                source_uri=source,
                pinned_uri=ref.pinned_uri,
                tracking_uri=ref.tracking_uri,
                registered_model_name=ref.registered_name,
                model_version=ref.version,
                alias=ref.alias,
                stage=ref.stage,
                model_dir=str(model_dir),
            )
        else:
            from shipyard.models import resolve_model_uri

            model_dir = resolve_model_uri(source)
            pin = RegistryPin(
                source_uri=source,
                pinned_uri=str(model_dir),
                model_dir=str(model_dir),
                fingerprint=model_fingerprint(str(model_dir)),
            )
        _check_flavor(model_dir, config.engine, source)
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
            tracking = config.tracking_uri or self.settings.tracking_uri
            return pin_mlflow_uri(source, tracking).pinned_uri
        from shipyard.models import resolve_model_uri

        path = str(resolve_model_uri(source))
        return model_fingerprint(path) or path

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        new, pin = self._prepare(config)
        service = self._new_service(new, pin)
        self.register_service(service)
        what = f"the MLflow model {pin.pinned_uri} (engine {new.engine})"
        with (
            discarded_unless_started(self.store, service, what),
            self.change(service, "deploy", timeout, new, pin.identity),
        ):
            service.start(timeout=timeout)
        return service

    def _new_service(self, config: MLFlowDeploymentConfig, pin: RegistryPin) -> MLFlowServer:
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
                    health_check=HTTPHealthCheck(path="/v2/health/ready"),
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
        server = cast(MLFlowServer, service)
        new, pin = self._prepare(config)
        old = server.config
        hot = server.is_running and not any(
            getattr(old, key) != getattr(new, key) for key in _RESTART_FIELDS
        )
        if hot and isinstance(server, MLFlowDeploymentService) and server.hot_reloadable:
            return self._reload(server, new, pin, timeout)
        if isinstance(server, MLFlowShipyardServer) and new.engine == "shipyard":
            if hot:
                return self._reload(server, new, pin, timeout)
            return self._roll(server, new, pin, timeout)
        return self._replace(server, new, pin, timeout)

    def _reload(
        self, server: MLFlowServer, new: MLFlowDeploymentConfig, pin: RegistryPin, timeout: float
    ) -> Service:
        old_pin = server.registry
        try:
            if isinstance(server, MLFlowDeploymentService):
                server.reload(new, pin, timeout)
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
        from shipyard.deployers.local._rolling import roll

        was_running = server.is_running
        before = server.model_dump(include={"config", "registry", "workers", "grpc_port"})
        endpoint = server.endpoint
        server.pending_registry = pin
        server.persist()
        server.config, server.registry = new, pin
        server.workers = new.workers or self.settings.workers
        server.grpc_port = new.grpc_port or server.grpc_port
        server.endpoint = endpoint.model_copy(
            update={"port": new.port or endpoint.port, "host": new.host or endpoint.host}
        )
        try:
            if was_running:
                roll(server, timeout)
            else:
                server.start(timeout=timeout)
        except ServiceError as err:
            server.config = MLFlowDeploymentConfig.model_validate(before["config"])
            server.registry = RegistryPin.model_validate(before["registry"])
            server.workers, server.grpc_port = before["workers"], before["grpc_port"]
            server.endpoint, server.pending_registry = endpoint, None
            message = f"Updating the model server {server.uuid} to {pin.pinned_uri} failed: {err}"
            if was_running:
                message += " The previous processes keep serving."
            server.status.update(server.status.state, message)
            server.persist()
            raise DeploymentError(message) from err
        server.pending_registry = None
        server.persist()
        server.check_status()
        return server

    def _replace(
        self, server: MLFlowServer, new: MLFlowDeploymentConfig, pin: RegistryPin, timeout: float
    ) -> Service:
        """A change no reload or rolling replacement can make (another engine, or an
        ``engine: mlflow`` server's ports, workers or built environment): a server of the
        new kind on the same UUID and port, started once the old one has stopped (the URL
        refuses connections meanwhile); the old one back on failure."""
        was_running = server.is_running
        server.stop(timeout=timeout)
        replacement = self._new_service(new, pin)
        replacement.uuid = server.uuid
        replacement.run_dir = server.run_dir
        replacement.endpoint = replacement.endpoint.model_copy(
            update={"port": new.port or server.endpoint.port}
        )
        # The change under way goes with the record: a killed caller leaves it to reconcile.
        replacement.intent = server.intent
        self.register_service(replacement)
        try:
            replacement.start(timeout=timeout)
        except ServiceError as err:
            replacement.stop(timeout=10.0, force=True)
            self.register_service(server)
            message = f"Updating the model server {server.uuid} to {pin.pinned_uri} failed: {err}"
            if was_running:
                server.start(timeout=timeout)
                message += " The previous model was started again."
            server.status.update(server.status.state, message)
            server.persist()
            raise DeploymentError(message) from err
        # The replacement is the record now: the old object (which the caller confirms the
        # change on) must not write its stale state over it, in the registry or run dir.
        server.bind(None)
        server.intent = None
        confirm_intent(replacement)
        return replacement

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, MLFlowShipyardServer | MLFlowDeploymentService):
            pin = service.registry
            pid = service.running_pid()
            info.update(
                {
                    "ENGINE": service.config.engine,
                    "REGISTRY_MODEL_NAME": pin.registered_model_name or None,
                    "REGISTRY_MODEL_VERSION": pin.model_version or None,
                    "REGISTRY_MODEL_ALIAS": pin.alias or None,
                    "REGISTRY_MODEL_STAGE": pin.stage or None,
                    "SERVED_MODEL_URI": pin.pinned_uri,
                    "TRACKING_URI": pin.tracking_uri or None,
                    "HEALTH_CHECK_URL": _health_url(service),
                    "SERVICE_PATH": str(service.run_path),
                    "LOG_FILE": str(service.log_path),
                    "DAEMON_PID": None if pid is None else str(pid),
                }
            )
        return info


def _health_url(service: MLFlowServer) -> str | None:
    check = service.endpoint.health_check
    if service.endpoint.url is None or not isinstance(check, HTTPHealthCheck):
        return None
    return f"{service.endpoint.url}{check.path}"


def _check_engine(config: MLFlowDeploymentConfig) -> None:
    """Refuse what cannot run here before anything is fetched or started."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise MissingDependencyError("mlflow", "mlflow", "the mlflow model deployer")
    if config.mlserver:
        raise ConfigError(
            "mlserver: true (Seldon MLServer) is not supported by the mlflow flavor; use "
            "engine: shipyard for the V2 protocol, or the kserve/seldon flavors."
        )
    if config.engine == "shipyard" and config.env_manager != "local":
        raise ConfigError(
            f"env_manager: {config.env_manager} needs engine: mlflow; engine: shipyard runs "
            "in this environment (env_manager: local)."
        )
    # What MLflow runs to build the environment (MLflow 3: uv, or pyenv for the Python
    # of virtualenv's `python -m venv`), looked up on the PATH the server will get.
    tool, install = {
        "uv": ("uv", "pip install uv"),
        "virtualenv": ("pyenv", "install it: https://github.com/pyenv/pyenv#installation"),
    }.get(config.env_manager, ("", ""))
    if tool and shutil.which(tool, path=mlflow_environment("")["PATH"]) is None:
        raise ConfigError(
            f"env_manager: {config.env_manager} needs {tool} on PATH ({install}), or use "
            "env_manager: local."
        )


def _check_flavor(model_dir: Path, engine: str, uri: str) -> None:
    """Both engines load MLflow models as pyfunc: one without that flavor is refused."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        if engine == "mlflow":
            raise DeploymentError(
                f"{uri} is not an MLflow model (no MLmodel file in {model_dir}); engine "
                "mlflow serves MLflow models only: use engine: shipyard, or the local flavor."
            )
        return
    try:
        flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors", {})
    except (OSError, yaml.YAMLError) as err:
        raise DeploymentError(f"Cannot read the MLmodel file of {uri}: {err}") from err
    if "python_function" not in flavors:
        raise DeploymentError(
            f"The MLflow model {uri} has the flavor(s) {', '.join(flavors) or '(none)'} but no "
            f"python_function flavor, which engine {engine} needs to load it; log it with "
            "a flavor that adds python_function (mlflow.sklearn, mlflow.pyfunc, ...)."
        )
