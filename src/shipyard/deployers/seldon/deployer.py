"""The ``seldon`` model deployer: one SeldonDeployment (Seldon Core v1) per model server."""

from __future__ import annotations

from typing import Any, cast

from shipyard.deployers._kubernetes import (
    KubernetesModelDeployer,
    KubernetesModelService,
    inspect_model,
    resource_name,
)
from shipyard.deployers.seldon.config import SeldonDeploymentConfig, SeldonModelDeployerConfig
from shipyard.deployers.seldon.manifest import seldon_deployment
from shipyard.deployers.seldon.service import SeldonDeploymentService
from shipyard.errors import DeploymentError
from shipyard.services.service import ServiceConfig

__all__ = ["SeldonModelDeployer"]

#: Shipyard's formats that Seldon's prepackaged (MLServer) servers load as they are.
_PREPACKAGED = {
    "sklearn": "SKLEARN_SERVER",
    "xgboost": "XGBOOST_SERVER",
    "mlflow": "MLFLOW_SERVER",
}


class SeldonModelDeployer(KubernetesModelDeployer):
    """Deploys models as Seldon Core SeldonDeployments (V2 protocol)."""

    FLAVOR_NAME = "seldon"
    CONFIG_CLASS = SeldonModelDeployerConfig
    DEPLOYMENT_CONFIG = SeldonDeploymentConfig
    SERVICE_CLASS = SeldonDeploymentService

    def make_service(self, config: ServiceConfig) -> KubernetesModelService:
        config = cast(SeldonDeploymentConfig, config)
        settings = self.settings
        service = SeldonDeploymentService(
            flavor=self.flavor,
            config=config,
            cluster=settings.cluster(),
            base_url=settings.base_url,
        )
        service.resource_name = resource_name(config.model_name or "model", service.uuid)
        # The graph node's name is the model's name on the V2 paths.
        service.served_name = service.resource_name
        return service

    def _implementation(self, config: SeldonDeploymentConfig) -> str:
        if config.implementation:
            return config.implementation
        fmt = inspect_model(config.model_uri).platform_format
        return _PREPACKAGED.get(fmt or "", "custom")

    def build_manifest(self, service: KubernetesModelService) -> dict[str, Any]:
        config = cast(SeldonDeploymentConfig, service.config)
        implementation = self._implementation(config)
        image = ""
        if implementation == "custom":
            image = config.image or self.settings.image
            if not image:
                raise DeploymentError(
                    f"The model '{config.model_name}' needs Shipyard's own server (a custom "
                    "predictor, or a format Seldon's servers cannot load as saved), so an "
                    "image with shipyard[serve]: build one from `shipyard build MODEL "
                    "--output DIR`, push it, and set the deployer's --image (or the "
                    "deployment's image)."
                )
        return seldon_deployment(
            name=service.resource_name,
            namespace=service.cluster.namespace,
            node=service.served_name,
            storage_uri=service.storage_uri,
            implementation=implementation,
            image=image,
            replicas=config.replicas,
            secret_name=config.secret_name or self.settings.secret_name,
            service_account_name=config.service_account_name or self.settings.service_account_name,
            resources=config.resources,
            env=config.env,
        )

    def storage_uri_of(self, resource: dict[str, Any]) -> str:
        predictors = (resource.get("spec") or {}).get("predictors") or [{}]
        return str((predictors[0].get("graph") or {}).get("modelUri") or "")

    def served_name_of(self, resource: dict[str, Any]) -> str:
        predictors = (resource.get("spec") or {}).get("predictors") or [{}]
        return str((predictors[0].get("graph") or {}).get("name") or "")
