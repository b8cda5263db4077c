"""The ``mlflow`` model deployer flavor: MLflow models (registry or URI) as local servers.

``engine: mlflow`` runs MLflow's own scoring server; ``engine: shipyard`` runs Shipyard's
server on the same pyfunc. Importing this package imports no MLflow.
"""

from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig, MLFlowModelDeployerConfig
from shipyard.deployers.mlflow.deployer import MLFlowModelDeployer
from shipyard.deployers.mlflow.service import (
    MLFlowDeploymentService,
    MLFlowShipyardServer,
    RegistryPin,
)

__all__ = [
    "MLFlowDeploymentConfig",
    "MLFlowDeploymentService",
    "MLFlowModelDeployer",
    "MLFlowModelDeployerConfig",
    "MLFlowShipyardServer",
    "RegistryPin",
]
