"""The ``seldon`` flavor's configs: the deployer (cluster) and one deployment (model)."""

from __future__ import annotations

from pydantic import Field, field_validator

from shipyard.deployers._kubernetes import KubernetesDeployerConfig
from shipyard.deployers._kubernetes._config import KubernetesDeploymentConfig

__all__ = ["IMPLEMENTATIONS", "SeldonDeploymentConfig", "SeldonModelDeployerConfig"]

#: Seldon Core's prepackaged servers, plus "" (choose) and "custom" (`shipyard serve`).
IMPLEMENTATIONS = (
    "",
    "SKLEARN_SERVER",
    "XGBOOST_SERVER",
    "TENSORFLOW_SERVER",
    "MLFLOW_SERVER",
    "TRITON_SERVER",
    "custom",
)


class SeldonModelDeployerConfig(KubernetesDeployerConfig):
    """Where the SeldonDeployments go (``--kubernetes_context`` ... ``--base_url``)."""


class SeldonDeploymentConfig(KubernetesDeploymentConfig):
    """One SeldonDeployment (``SeldonDeploymentConfig`` of the seed's examples)."""

    implementation: str = Field(
        default="",
        description="Seldon prepackaged server (SKLEARN_SERVER, XGBOOST_SERVER, "
        "TENSORFLOW_SERVER, MLFLOW_SERVER, TRITON_SERVER), 'custom' for an image running "
        "`shipyard serve`, or empty: the prepackaged server when it loads the model "
        "directory as it is, else the custom image.",
    )

    @field_validator("implementation")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in IMPLEMENTATIONS:
            known = ", ".join(v for v in IMPLEMENTATIONS if v)
            raise ValueError(f"implementation must be one of {known}; got {value!r}")
        return value
