"""The ``kserve`` model deployer flavor: KServe InferenceServices (V2 protocol)."""

from shipyard.deployers.kserve.config import KServeDeploymentConfig, KServeModelDeployerConfig
from shipyard.deployers.kserve.deployer import KServeModelDeployer
from shipyard.deployers.kserve.manifest import cluster_serving_runtime
from shipyard.deployers.kserve.service import KServeDeploymentService

__all__ = [
    "KServeDeploymentConfig",
    "KServeDeploymentService",
    "KServeModelDeployer",
    "KServeModelDeployerConfig",
    "cluster_serving_runtime",
]
