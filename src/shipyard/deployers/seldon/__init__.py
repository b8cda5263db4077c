"""The ``seldon`` model deployer flavor: Seldon Core v1 SeldonDeployments (V2 protocol)."""

from shipyard.deployers.seldon.config import SeldonDeploymentConfig, SeldonModelDeployerConfig
from shipyard.deployers.seldon.deployer import SeldonModelDeployer
from shipyard.deployers.seldon.service import SeldonDeploymentService

__all__ = [
    "SeldonDeploymentConfig",
    "SeldonDeploymentService",
    "SeldonModelDeployer",
    "SeldonModelDeployerConfig",
]
