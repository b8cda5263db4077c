"""The two kinds of ``mlflow`` model server, one per engine, and what they both record.

``engine: shipyard`` is the local flavor's server (``python -m shipyard.serving``) given the
pinned ``models:/name/version`` URI; ``engine: mlflow`` is MLflow's own scoring server
behind the socket keeper (``_keeper.py``), which keeps the port across in-place updates.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shipyard.deployers.local.service import (
    LocalModelServer,
    LocalModelServerConfig,
    new_control_socket_path,
    remove_control_socket,
    send_reload,
)
from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig
from shipyard.errors import BadRequestError, ServiceError
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.local_daemon import LocalDaemonService

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


def _mlflow_environment(tracking_uri: str) -> dict[str, str]:
    env = dict(os.environ)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    # MLflow's CLI starts `bash -c "exec uvicorn ..."`: this environment's bin must come
    # first on PATH, or another uvicorn (or none) is found.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


class MLFlowShipyardServer(LocalModelServer):
    """``engine: shipyard``: Shipyard's server loading the pinned MLflow model."""

    config: MLFlowDeploymentConfig = Field(default_factory=MLFlowDeploymentConfig)
    registry: RegistryPin = Field(default_factory=RegistryPin)

    @property
    def model_version(self) -> str:
        return self.registry.model_version

    # Its server reports the resolved registry URI (models:/name/N), which the record's
    # config does not hold as such: the flavor's own update path keeps the record true.
    REPORTS_SERVED_MODEL: ClassVar[bool] = False

    def served_model_uri(self, config: LocalModelServerConfig) -> str:
        # The version resolved at deploy time: a restart never drifts to a moved alias.
        return self.registry.pinned_uri or config.model_uri

    def environment(self) -> dict[str, str]:
        return _mlflow_environment(self.registry.tracking_uri)


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
    endpoint: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(health_check=HTTPHealthCheck(path="/ping"))
    )

    @property
    def model_version(self) -> str:
        return self.registry.model_version

    @property
    def prediction_url(self) -> str | None:
        base = self.endpoint.url
        return None if base is None else f"{base}/invocations"

    @property
    def hot_reloadable(self) -> bool:
        return self.config.env_manager == "local"

    def environment(self) -> dict[str, str]:
        env = _mlflow_environment(self.registry.tracking_uri)
        env["MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"] = str(self.config.timeout)
        return env

    def command(self) -> list[str]:
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

    def reload(self, config: MLFlowDeploymentConfig, pin: RegistryPin, timeout: float) -> None:
        """Swap in ``pin``'s model on the same socket; on failure the old one keeps serving
        and DeploymentError names the cause."""
        command = {"op": "reload", "model_dir": pin.model_dir, "timeout": timeout}
        send_reload(self.uuid, self.control_socket, command, timeout + 30, pin.pinned_uri)
        self.config = config
        self.registry = pin
        self.persist()

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        super().delete(timeout=timeout, force=force)
        remove_control_socket(self.control_socket)

    def predict(self, data: Any) -> Any:
        """POST ``data`` to ``/invocations``: a dict as MLflow's JSON body (``inputs``,
        ``dataframe_split``, ...), rows as ``{"inputs": rows}``; returns ``predictions``."""
        import httpx
        import numpy as np

        body = data if isinstance(data, dict) else {"inputs": np.asarray(data).tolist()}
        url = self.prediction_url
        if url is None or not self.is_running:
            raise ServiceError(
                f"The model server {self.uuid} is not running; start it with "
                f"`shipyard model-deployer models start {self.uuid}`."
            )
        try:
            content = json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise BadRequestError(f"The request cannot be sent as JSON: {err}") from err
        try:
            response = httpx.post(
                url, content=content, headers={"content-type": "application/json"}, timeout=60
            )
        except httpx.HTTPError as err:
            raise ServiceError(f"POST {url} failed: {err}") from err
        if response.status_code != 200:
            raise ServiceError(f"POST {url} answered {response.status_code}: {response.text}")
        answer = response.json()
        if isinstance(data, dict) or not isinstance(answer, dict) or "predictions" not in answer:
            return answer
        return np.asarray(answer["predictions"])
