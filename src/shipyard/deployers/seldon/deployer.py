"""The ``seldon`` model deployer: one SeldonDeployment (Seldon Core v1) per model server."""

from __future__ import annotations

from typing import Any, cast

from shipyard.deployers._kubernetes import (
    KubernetesModelDeployer,
    KubernetesModelService,
    ModelFacts,
    inspect_model,
    resource_name,
)
from shipyard.deployers._kubernetes._secrets import pod_secret_name
from shipyard.deployers._kubernetes._trust import names_pickle
from shipyard.deployers.seldon.config import SeldonDeploymentConfig, SeldonModelDeployerConfig
from shipyard.deployers.seldon.manifest import seldon_deployment
from shipyard.deployers.seldon.service import SeldonDeploymentService
from shipyard.errors import DeploymentError
from shipyard.services.service import ServiceConfig

__all__ = ["SeldonModelDeployer"]

#: Seldon's prepackaged servers that unpickle what they load, and how.
_PICKLING = {"SKLEARN_SERVER": "joblib/pickle", "MLFLOW_SERVER": "MLflow's cloudpickle"}
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
            secret_name=self._storage_secret(service),
            service_account_name=config.service_account_name or self.settings.service_account_name,
            resources=config.resources,
            env=self.pod_env(service) or None,
        )

    def _storage_secret(self, service: KubernetesModelService) -> str:
        """The Secret whose variables Seldon gives the storage initializer
        (``envSecretRefName``): the user's, or the pods' own when the URI had credentials."""
        config = cast(SeldonDeploymentConfig, service.config)
        given = config.secret_name or self.settings.secret_name
        if not self.storage_secret(service):
            return given
        if given:
            raise DeploymentError(
                f"The model URI of '{config.model_name}' has credentials, and secret_name "
                f"'{given}' is set too: Seldon gives its storage initializer one Secret. Put "
                "the credentials in that Secret and deploy the URI without them."
            )
        return pod_secret_name(service.resource_name)

    def runs_shipyard_server(self, service: KubernetesModelService) -> bool:
        return self._implementation(cast(SeldonDeploymentConfig, service.config)) == "custom"

    def code_risk(self, service: KubernetesModelService, facts: ModelFacts) -> str | None:
        implementation = self._implementation(cast(SeldonDeploymentConfig, service.config))
        if implementation in _PICKLING:
            return f"Seldon's {implementation} loads it with {_PICKLING[implementation]}"
        if implementation == "custom" and names_pickle(facts.uri):
            return "it is a pickle/joblib file"
        return None  # Shipyard's server in the pod decides, told by its env

    def storage_uri_of(self, resource: dict[str, Any]) -> str:
        predictors = (resource.get("spec") or {}).get("predictors") or [{}]
        return str((predictors[0].get("graph") or {}).get("modelUri") or "")

    def served_name_of(self, resource: dict[str, Any]) -> str:
        predictors = (resource.get("spec") or {}).get("predictors") or [{}]
        return str((predictors[0].get("graph") or {}).get("name") or "")
