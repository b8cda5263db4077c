"""The ``kserve`` flavor's configs: the deployer (cluster) and one deployment (model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from shipyard.deployers._kubernetes import KubernetesDeployerConfig
from shipyard.deployers._kubernetes._config import KubernetesDeploymentConfig

__all__ = ["PREDICTORS", "KServeDeploymentConfig", "KServeModelDeployerConfig"]

#: ``predictor`` values: a KServe model format, ``custom`` (Shipyard's runtime), ``auto``.
PREDICTORS = (
    "auto",
    "sklearn",
    "xgboost",
    "lightgbm",
    "onnx",
    "pytorch",
    "tensorflow",
    "triton",
    "mlflow",
    "custom",
)


class KServeModelDeployerConfig(KubernetesDeployerConfig):
    """Where the InferenceServices go (``--kubernetes_context`` ... ``--base_url``)."""

    runtime_name: str = Field(
        default="shipyard",
        description="ClusterServingRuntime that runs `shipyard serve` for custom predictors.",
    )


class KServeDeploymentConfig(KubernetesDeploymentConfig):
    """One InferenceService: the model, its runtime, its scale and its rollout."""

    predictor: str = Field(
        default="auto",
        description="KServe model format (sklearn, xgboost, lightgbm, onnx, pytorch, "
        "tensorflow, triton, mlflow), 'custom' for Shipyard's runtime, or 'auto': the "
        "platform's runtime when it loads the model directory as it is, else Shipyard's.",
    )
    min_replicas: int | None = Field(
        default=None, ge=0, description="Fewest pods (0: scale to zero); default: replicas."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, description="Most pods the autoscaler may run."
    )
    timeout: int | None = Field(
        default=None, ge=1, description="Seconds a prediction request may take."
    )
    canary_traffic_percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="On an update: share of traffic the new model gets first; it is "
        "promoted to 100% once ready.",
    )
    deployment_mode: Literal["", "Standard", "Knative"] = Field(
        default="",
        description="KServe deployment mode (Standard: Deployments; Knative: revisions "
        "and scale to zero); empty: the cluster's default.",
    )
    runtime: str = Field(
        default="", description="A ServingRuntime to pin; default: KServe picks by format."
    )

    @field_validator("predictor")
    @classmethod
    def _known_predictor(cls, value: str) -> str:
        if value not in PREDICTORS:
            raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)}; got {value!r}")
        return value

    @model_validator(mode="after")
    def _replicas_in_order(self) -> KServeDeploymentConfig:
        low = self.min_replicas if self.min_replicas is not None else self.replicas
        if self.max_replicas is not None and self.max_replicas < low:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({low}); "
                "raise max_replicas or lower min_replicas"
            )
        return self
