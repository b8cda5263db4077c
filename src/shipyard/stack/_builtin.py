"""The flavors that ship with Shipyard, as plain data (nothing imported, nothing registered)."""

from __future__ import annotations

from shipyard.stack.component import ComponentType
from shipyard.stack.flavor import Flavor

__all__ = ["builtin_flavors"]


def builtin_flavors() -> list[Flavor]:
    return [
        Flavor(
            name="local",
            type=ComponentType.ARTIFACT_STORE,
            config_class="shipyard.stack.local_components:LocalArtifactStoreConfig",
            implementation="shipyard.stack.local_components:LocalArtifactStore",
            description="Artifacts in a local directory (default $SHIPYARD_HOME/artifacts).",
        ),
        Flavor(
            name="local",
            type=ComponentType.ORCHESTRATOR,
            config_class="shipyard.pipelines._orchestrator:LocalOrchestratorConfig",
            implementation="shipyard.pipelines._orchestrator:LocalOrchestrator",
            description="Runs pipeline steps one after another in this process.",
        ),
        Flavor(
            name="local",
            type=ComponentType.MODEL_DEPLOYER,
            config_class="shipyard.deployers.local.deployer:LocalModelDeployerConfig",
            implementation="shipyard.deployers.local.deployer:LocalModelDeployer",
            description="Model servers as background processes on this machine.",
        ),
        Flavor(
            name="kserve",
            type=ComponentType.MODEL_DEPLOYER,
            config_class="shipyard.deployers.kserve.config:KServeModelDeployerConfig",
            implementation="shipyard.deployers.kserve.deployer:KServeModelDeployer",
            description="KServe InferenceServices on Kubernetes (needs shipyard[kubernetes]).",
        ),
        Flavor(
            name="seldon",
            type=ComponentType.MODEL_DEPLOYER,
            config_class="shipyard.deployers.seldon.config:SeldonModelDeployerConfig",
            implementation="shipyard.deployers.seldon.deployer:SeldonModelDeployer",
            description="Seldon Core v1 SeldonDeployments on Kubernetes "
            "(needs shipyard[kubernetes]).",
        ),
        Flavor(
            name="mlflow",
            type=ComponentType.MODEL_DEPLOYER,
            config_class="shipyard.deployers.mlflow.config:MLFlowModelDeployerConfig",
            implementation="shipyard.deployers.mlflow.deployer:MLFlowModelDeployer",
            description="MLflow models (registry or URI) served by MLflow's or Shipyard's server.",
        ),
        Flavor(
            name="ray",
            type=ComponentType.MODEL_DEPLOYER,
            config_class="shipyard.deployers.ray.deployer:RayModelDeployerConfig",
            implementation="shipyard.deployers.ray.deployer:RayModelDeployer",
            description="Ray Serve applications on a Ray cluster (shipyard[ray]).",
        ),
    ]
