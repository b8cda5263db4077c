"""Configs of the ``mlflow`` flavor: the deployer component's and one deployment's.

Field names are ZenML's where they mean the same (``model_uri``, ``model_name``,
``registry_model_name``, ``registry_model_version``, ``registry_model_stage``, ``workers``,
``mlserver``, ``timeout``), so a ZenML config deploys here unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shipyard.deployers.local._config import LocalModelServerConfig
from shipyard.deployers.local.deployer import LocalModelDeployerConfig

__all__ = ["MLFlowDeploymentConfig", "MLFlowModelDeployerConfig"]


class MLFlowModelDeployerConfig(LocalModelDeployerConfig):
    """The ``mlflow`` model deployer component (``--tracking-uri``, ``--host``, ``--workers``)."""

    tracking_uri: str = Field(
        default="",
        description="MLflow tracking server for models:/ and runs:/ URIs; "
        "default: MLFLOW_TRACKING_URI.",
    )


class MLFlowDeploymentConfig(LocalModelServerConfig):
    """One MLflow model served on this machine, by MLflow's scoring server or by Shipyard's."""

    registry_model_name: str = Field(
        default="", description="Registered model to serve (instead of model_uri)."
    )
    registry_model_version: str = Field(
        default="", description="Its version; with neither version, alias nor stage: latest."
    )
    registry_model_stage: str = Field(
        default="", description="Its stage (MLflow's deprecated stages: Staging, Production)."
    )
    alias: str = Field(default="", description="Its alias (e.g. champion).")
    tracking_uri: str = Field(
        default="",
        description="Tracking server; default: the deployer's, else MLFLOW_TRACKING_URI.",
    )
    engine: Literal["mlflow", "shipyard"] = Field(
        default="mlflow",
        description="mlflow: MLflow's own scoring server; shipyard: Shipyard's server "
        "(V2 REST/gRPC, /invocations, KServe V1) loading the same pyfunc.",
    )
    env_manager: Literal["local", "virtualenv", "uv"] = Field(
        default="local",
        description="engine mlflow: run in this environment (local), or in one MLflow "
        "builds from the model's requirements (virtualenv, uv).",
    )
    insecure: bool = Field(
        default=False,
        description="engine mlflow on a non-loopback host: MLflow's server checks no token; "
        "serve there anyway (the network in front of it controls access).",
    )
    mlserver: bool = Field(
        default=False, description="ZenML's switch to Seldon MLServer; not supported here."
    )
    timeout: int = Field(
        default=60, ge=1, description="Seconds a prediction may take (MLflow's request timeout)."
    )

    @model_validator(mode="after")
    def _one_selector(self) -> MLFlowDeploymentConfig:
        chosen = [
            key
            for key in ("registry_model_version", "registry_model_stage", "alias")
            if getattr(self, key)
        ]
        if len(chosen) > 1:
            raise ValueError(
                f"give one of registry_model_version, registry_model_stage and alias, not "
                f"{' and '.join(chosen)}"
            )
        if chosen and not self.registry_model_name:
            raise ValueError(f"{chosen[0]} needs registry_model_name")
        return self

    def source_uri(self) -> str:
        """The model URI this config names: the registry fields, else ``model_uri``."""
        name = self.registry_model_name
        if not name:
            return self.model_uri
        if self.alias:
            return f"models:/{name}@{self.alias}"
        if self.registry_model_version:
            return f"models:/{name}/{self.registry_model_version}"
        return f"models:/{name}/{self.registry_model_stage or 'latest'}"
