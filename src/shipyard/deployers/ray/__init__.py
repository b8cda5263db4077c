"""The ``ray`` model deployer flavor: Ray Serve applications running Shipyard's data plane.

Importing it imports no Ray: Ray is loaded by the calls that talk to the cluster.
"""

from shipyard.deployers.ray.deployer import RayModelDeployer, RayModelDeployerConfig
from shipyard.deployers.ray.service import RayActorOptions, RayDeploymentConfig, RayModelServer

__all__ = [
    "RayActorOptions",
    "RayDeploymentConfig",
    "RayModelDeployer",
    "RayModelDeployerConfig",
    "RayModelServer",
]
