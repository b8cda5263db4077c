"""The two kinds of ``mlflow`` model server, one per engine, and what they both record.

``engine: shipyard`` is the local flavor's server (``python -m shipyard.serving``) given the
pinned ``models:/name/version`` URI; ``engine: mlflow`` is MLflow's own scoring server
behind the socket keeper (``_keeper.py``), which keeps the port across in-place updates.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shipyard.deployers._predict import post_json
from shipyard.deployers._token import bearer_headers
from shipyard.deployers._v2 import invocations_url
from shipyard.deployers.local._config import LocalModelServerConfig, keeping_processes
from shipyard.deployers.local._control import (
    keep_token_file,
    new_control_socket_path,
    remove_control_socket,
    send_reload,
)
from shipyard.deployers.local.service import LocalModelServer
from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig
from shipyard.errors import ServiceError
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.intent import ServedModel
from shipyard.services.local_daemon import LocalDaemonService
from shipyard.services.state import ServiceState

__all__ = ["MLFlowDeploymentService", "MLFlowShipyardServer", "RegistryPin"]


class RegistryPin(BaseModel):
    """Which model a server serves: the URI asked for and what it resolved to then."""

    model_config = ConfigDict(extra="forbid")

    source_uri: str = Field(default="", description="The URI the config named.")
    pinned_uri: str = Field(default="", description="models:/name/version, or the URI itself.")
    tracking_uri: str = ""
    registered_model_name: str = ""
    model_version: str = ""
    alias: str = ""
    stage: str = ""
    model_dir: str = Field(default="", description="The local copy the server loads.")
    fingerprint: str = Field(
        default="", description="Fingerprint of a local model's files (empty for MLflow URIs)."
    )

    @property
    def identity(self) -> str:
        """What tells this model from another when a server reports what it serves: a
        local model's file fingerprint, else the pinned URI (a registry version's files
        never change)."""
        return self.fingerprint or self.pinned_uri


def mlflow_environment(tracking_uri: str) -> dict[str, str]:
    """The environment an MLflow server (or the tools that build its env) runs in:
    ``tracking_uri`` with its secret references resolved (only a process's owner can read
    its environment; MLflow's own ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN`` pass
    through the same way and are never written anywhere)."""
    env = dict(os.environ)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    # MLflow's CLI starts `bash -c "exec uvicorn ..."`: this environment's bin must come
    # first on PATH, or another uvicorn (or none) is found.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


class MLFlowShipyardServer(LocalModelServer):
    """``engine: shipyard``: Shipyard's server loading the pinned MLflow model.

    Its supervisor reports what it serves (the pinned URI, or a local model's
    fingerprint), so an interrupted change is reconciled like the local flavor's
    (``services.intent``). The record's config keeps the URI as asked
    (``models:/iris@champion``); the pin says which version that was, and the pin of a
    change under way (``pending_registry``) is recorded before the server is told.
    """

    config: MLFlowDeploymentConfig = Field(default_factory=MLFlowDeploymentConfig)
    registry: RegistryPin = Field(default_factory=RegistryPin)
    pending_registry: RegistryPin | None = Field(
        default=None, description="The pin an update under way is switching to."
    )

    @property
    def model_version(self) -> str:
        return self.registry.model_version

    REPORTS_SERVED_MODEL: ClassVar[bool] = True

    def served_model_uri(self, config: LocalModelServerConfig) -> str:
        # The version resolved at deploy time: a restart never drifts to a moved alias.
        return self.registry.pinned_uri or config.model_uri

    def environment(self) -> dict[str, str]:
        # The local flavor's (a URI with credentials goes in the environment, never in
        # argv), and the tracking server the pinned models:/ URI is resolved against.
        tracking = mlflow_environment(self.resolve_secrets(self.registry.tracking_uri))
        return {**super().environment(), **tracking}

    # -- what it serves (``services.intent``) -----------------------------------------------

    def served_model(self) -> ServedModel | None:
        """What the supervisor serves, in the record's terms: the config URI that named it
        (``models:/iris@champion``) with the pin's identity as the fingerprint, so an alias
        that moved from one version to another is told apart."""
        served = super().served_model()
        if served is None:
            return None
        identity = served.fingerprint or served.model_uri
        if identity == self.registry.identity:
            uri = self.config.model_uri
        elif self.pending_registry is not None and identity == self.pending_registry.identity:
            uri = self.pending_registry.source_uri
        else:
            uri = served.model_uri  # neither: the record will name it as served
        return ServedModel(model_uri=uri, fingerprint=identity, changing=served.changing)

    def recorded_fingerprint(self) -> str:
        return self.registry.identity

    def apply_config(self, config: dict[str, Any], fingerprint: str = "") -> None:
        self.config = keeping_processes(self.config, config)
        pending, self.pending_registry = self.pending_registry, None
        if pending is not None and fingerprint == pending.identity:
            self.registry = pending
        elif fingerprint and fingerprint != self.registry.identity:
            self.registry = _pin_of_served(self.config.model_uri, fingerprint, self.registry)


def _pin_of_served(uri: str, identity: str, old: RegistryPin) -> RegistryPin:
    """The pin of a model the server serves that no recorded pin names (the record then
    follows the server): ``uri`` is what it reports, ``identity`` its fingerprint or URI."""
    name, _, version = uri.removeprefix("models:/").partition("/")
    registered = uri.startswith("models:/") and version.isdigit()
    return RegistryPin(
        source_uri=uri,
        pinned_uri=uri,
        tracking_uri=old.tracking_uri,
        registered_model_name=name if registered else "",
        model_version=version if registered else "",
        fingerprint="" if identity == uri else identity,
    )


class MLFlowDeploymentService(LocalDaemonService):
    """``engine: mlflow``: MLflow's scoring server (``/invocations``, ``/ping``).

    With ``env_manager: local`` it runs behind the socket keeper: updates keep the port
    and every queued connection. With ``virtualenv``/``uv`` it is ``mlflow models serve``
    in the environment MLflow builds, and an update restarts it on the same port.
    """

    config: MLFlowDeploymentConfig = Field(default_factory=MLFlowDeploymentConfig)
    registry: RegistryPin = Field(default_factory=RegistryPin)
    workers: int = 1
    control_socket: str = ""
    #: The service's bearer-token file, as ``engine: shipyard`` has ('' with ``auth:
    #: false``). MLflow's server checks no token; it is kept so that a switch to engine
    #: shipyard (which requires it) keeps every client that sends it working.
    auth_token_file: str = ""
    endpoint: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(health_check=HTTPHealthCheck(path="/ping"))
    )

    @property
    def model_version(self) -> str:
        return self.registry.model_version

    @property
    def prediction_url(self) -> str | None:
        base = self.endpoint.url
        return invocations_url(base)

    @property
    def hot_reloadable(self) -> bool:
        return self.config.env_manager == "local"

    def environment(self) -> dict[str, str]:
        env = mlflow_environment(self.resolve_secrets(self.registry.tracking_uri))
        env["MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"] = str(self.config.timeout)
        return env

    def request_headers(self) -> dict[str, str]:
        # MLflow's server checks no token: a token file gone missing is no error here.
        token_file = self.auth_token_file
        return bearer_headers(token_file if token_file and Path(token_file).is_file() else "")

    def check_status(self) -> tuple[ServiceState, str]:
        from shipyard.deployers.local._rolling import abandon_next
        from shipyard.services.intent import intent_in_progress

        if self.intent is None or not intent_in_progress(self.intent):
            # A rolling replacement whose caller is gone: its half-started processes go.
            abandon_next(self)
        return super().check_status()

    def command(self) -> list[str]:
        self.auth_token_file = keep_token_file(self, self.config.auth)
        host, port = self.endpoint.host, str(self.endpoint.port)
        if not self.hot_reloadable:
            mlflow_cli = shutil.which("mlflow", path=self.environment()["PATH"]) or "mlflow"
            return [
                mlflow_cli,
                "models",
                "serve",
                "-m",
                self.registry.model_dir,
                "-h",
                host,
                "-p",
                port,
                "-w",
                str(self.workers),
                "-t",
                str(self.config.timeout),
                "--env-manager",
                self.config.env_manager,
            ]
        remove_control_socket(self.control_socket)
        self.control_socket = str(new_control_socket_path(self.run_path, "keeper"))
        return [
            sys.executable,
            "-m",
            "shipyard.deployers.mlflow._keeper",
            self.registry.model_dir,
            "--host",
            host,
            "--port",
            port,
            "--workers",
            str(self.workers),
            "--timeout",
            str(self.config.timeout),
            "--control-socket",
            self.control_socket,
        ]

    def reload(
        self, config: MLFlowDeploymentConfig, pin: RegistryPin, timeout: float, workers: int
    ) -> None:
        """Swap in ``pin``'s model on the same socket, with ``workers`` workers and the
        config's request timeout; on failure the old workers keep serving and
        DeploymentError names the cause."""
        command = {
            "op": "reload",
            "model_dir": pin.model_dir,
            "timeout": timeout,
            "workers": workers,
            "request_timeout": config.timeout,
        }
        send_reload(self.uuid, self.control_socket, command, timeout + 30, pin.pinned_uri)
        self.config = config
        self.registry = pin
        self.workers = workers
        self.persist()

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        super().delete(timeout=timeout, force=force)
        remove_control_socket(self.control_socket)

    def predict(self, data: Any) -> Any:
        """POST ``data`` to ``/invocations``: a dict as MLflow's JSON body (``inputs``,
        ``dataframe_split``, ...), rows as ``{"inputs": rows}``; returns ``predictions``."""
        import numpy as np

        body = data if isinstance(data, dict) else {"inputs": np.asarray(data).tolist()}
        url = self.prediction_url
        response = post_json(self, url if self.is_running else None, body)
        if response.status_code != 200:
            raise ServiceError(f"POST {url} answered {response.status_code}: {response.text}")
        answer = response.json()
        if isinstance(data, dict) or not isinstance(answer, dict) or "predictions" not in answer:
            return answer
        return np.asarray(answer["predictions"])
