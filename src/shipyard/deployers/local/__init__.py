"""The ``local`` model deployer flavor."""

from shipyard.deployers.local.deployer import LocalModelDeployer, LocalModelDeployerConfig
from shipyard.deployers.local.service import (
    LocalDeploymentConfig,
    LocalModelServer,
    LocalModelServerConfig,
)

__all__ = [
    "LocalDeploymentConfig",
    "LocalModelDeployer",
    "LocalModelDeployerConfig",
    "LocalModelServer",
    "LocalModelServerConfig",
]
