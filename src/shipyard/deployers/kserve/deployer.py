"""The ``kserve`` model deployer: one InferenceService per model server."""

from __future__ import annotations

import copy
from typing import Any, cast

from shipyard.deployers._kubernetes import (
    KubernetesModelDeployer,
    KubernetesModelService,
    ModelFacts,
    Observation,
    inspect_model,
    resource_name,
    spec_patches,
)
from shipyard.deployers._kubernetes._secrets import pod_secret_name
from shipyard.deployers._kubernetes._trust import names_pickle
from shipyard.deployers.base import DeployerSettings
from shipyard.deployers.kserve.config import KServeDeploymentConfig, KServeModelDeployerConfig
from shipyard.deployers.kserve.manifest import (
    CLUSTER_SERVING_RUNTIME,
    DEPLOYMENT_MODE_ANNOTATION,
    INFERENCE_SERVICE,
    SHIPYARD_FORMAT,
    STOP_ANNOTATION,
    cluster_serving_runtime,
    predictor_spec,
)
from shipyard.deployers.kserve.service import KServeDeploymentService
from shipyard.errors import ConfigError, DeploymentError
from shipyard.services.service import ServiceConfig
from shipyard.services.state import ServiceState

__all__ = ["KServeModelDeployer", "canary_manifest"]

#: KServe runtimes that unpickle what they load, and how.
_PICKLING = {
    "sklearn": "joblib/pickle",
    "mlflow": "MLflow's cloudpickle",
    "pytorch": "torch.load (pickle) and handler code",
}
#: Shipyard's format names -> KServe's, where they differ.
_KSERVE_FORMAT = {"torchscript": "pytorch", "torch-export": "pytorch"}


def canary_manifest(
    current: dict[str, Any], new: dict[str, Any], percent: int, mode: str
) -> dict[str, Any]:
    """The InferenceService while ``new`` is a canary with ``percent`` of the traffic.

    Standard mode: the old predictor stays, the new one is ``spec.canary[0]``. Knative
    mode: the new predictor with ``canaryTrafficPercent`` (KServe keeps the last ready
    revision for the rest of the traffic).
    """
    if mode in ("RawDeployment", "Standard"):
        staged = copy.deepcopy(current)
        staged["metadata"] = copy.deepcopy(new["metadata"])
        staged.pop("status", None)
        canary = copy.deepcopy(new["spec"]["predictor"])
        # The canary's model is a plain container spec in the CRD: its name is required.
        canary["model"].setdefault("name", "kserve-container")
        staged["spec"]["canary"] = [{"predictor": canary, "trafficPercent": percent}]
        return staged
    staged = copy.deepcopy(new)
    staged["spec"]["predictor"]["canaryTrafficPercent"] = percent
    return staged


class KServeModelDeployer(KubernetesModelDeployer):
    """Deploys models as KServe InferenceServices (V2 protocol)."""

    FLAVOR_NAME = "kserve"
    CONFIG_CLASS = KServeModelDeployerConfig
    DEPLOYMENT_CONFIG = KServeDeploymentConfig
    SERVICE_CLASS = KServeDeploymentService

    settings = DeployerSettings(KServeModelDeployerConfig)

    # -- building --------------------------------------------------------------------------

    def make_service(self, config: ServiceConfig) -> KubernetesModelService:
        config = cast(KServeDeploymentConfig, config)
        service = KServeDeploymentService(
            flavor=self.flavor,
            config=config,
            cluster=self.settings.cluster(),
            base_url=self.settings.base_url,
        )
        service.resource_name = resource_name(config.model_name or "model", service.uuid)
        # KServe's runtimes serve the model under the InferenceService's name.
        service.served_name = service.resource_name
        return service

    def _model_format(self, service: KServeDeploymentService) -> str:
        config = service.config
        if config.predictor == "custom":
            return SHIPYARD_FORMAT
        if config.predictor != "auto":
            return config.predictor
        facts = inspect_model(config.model_uri)
        if facts.platform_format is not None:
            return _KSERVE_FORMAT.get(facts.platform_format, facts.platform_format)
        return SHIPYARD_FORMAT

    def _predictor(
        self, service: KServeDeploymentService, canary: int | None = None
    ) -> dict[str, Any]:
        config = service.config
        fmt = self._model_format(service)
        runtime = config.runtime
        if fmt == SHIPYARD_FORMAT:
            runtime = runtime or self.settings.runtime_name
        return predictor_spec(
            model_format=fmt,
            storage_uri=service.storage_uri,
            runtime=runtime,
            min_replicas=config.min_replicas
            if config.min_replicas is not None
            else config.replicas,
            max_replicas=config.max_replicas,
            timeout=config.timeout,
            resources=config.resources,
            service_account_name=self._service_account(service),
            env=self.pod_env(service) or None,
            canary_traffic_percent=canary,
        )

    def runs_shipyard_server(self, service: KubernetesModelService) -> bool:
        return self._model_format(cast(KServeDeploymentService, service)) == SHIPYARD_FORMAT

    def code_risk(self, service: KubernetesModelService, facts: ModelFacts) -> str | None:
        fmt = self._model_format(cast(KServeDeploymentService, service))
        if fmt in _PICKLING:
            return f"KServe's {fmt} runtime loads it with {_PICKLING[fmt]}"
        if fmt == SHIPYARD_FORMAT and names_pickle(facts.uri):
            return "it is a pickle/joblib file"
        return None  # Shipyard's server in the pod decides, told by its env

    def _secrets(self, service: KubernetesModelService) -> list[str]:
        """The Secrets KServe's storage initializer reads through the service account:
        the user's (``secret_name``) and the pods' own when the URI had credentials."""
        config = cast(KServeDeploymentConfig, service.config)
        found = [config.secret_name or self.settings.secret_name]
        if self.storage_secret(service):
            found.append(pod_secret_name(service.resource_name))
        return [name for name in found if name]

    def _service_account(self, service: KubernetesModelService) -> str:
        """The pods' service account: the one given, else one that carries the storage
        secrets (KServe reads storage credentials through a service account)."""
        config = cast(KServeDeploymentConfig, service.config)
        given = config.service_account_name or self.settings.service_account_name
        secrets = self._secrets(service)
        if given and self.storage_secret(service):
            raise DeploymentError(
                f"The model URI of '{config.model_name}' has credentials, which KServe's "
                f"storage initializer reads from a Secret of the pods' service account; the "
                f"service account '{given}' is yours, so Shipyard does not change it. Put the "
                "credentials in a Secret of that account and deploy the URI without them."
            )
        if given or not secrets:
            return given
        if len(secrets) == 1 and not self.storage_secret(service):
            return f"shipyard-{secrets[0]}"[:63]
        return pod_secret_name(service.resource_name)

    def extra_manifests(self, service: KubernetesModelService) -> list[dict[str, Any]]:
        config = cast(KServeDeploymentConfig, service.config)
        secrets = self._secrets(service)
        if not secrets or config.service_account_name or self.settings.service_account_name:
            return []
        return [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": self._service_account(service),
                    "namespace": service.cluster.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "shipyard"},
                },
                "secrets": [{"name": name} for name in secrets],
            }
        ]

    def apply_extra(self, service: KubernetesModelService) -> None:
        for account in self.extra_manifests(service):
            self.client().apply_service_account(account)

    def build_manifest(self, service: KubernetesModelService) -> dict[str, Any]:
        service = cast(KServeDeploymentService, service)
        annotations = {STOP_ANNOTATION: "false"}
        if service.config.deployment_mode:
            annotations[DEPLOYMENT_MODE_ANNOTATION] = service.config.deployment_mode
        return {
            "apiVersion": INFERENCE_SERVICE.api_version,
            "kind": INFERENCE_SERVICE.kind,
            "metadata": {
                "name": service.resource_name,
                "namespace": service.cluster.namespace,
                "annotations": annotations,
            },
            "spec": {"predictor": self._predictor(service)},
        }

    def storage_uri_of(self, resource: dict[str, Any]) -> str:
        model = ((resource.get("spec") or {}).get("predictor") or {}).get("model") or {}
        return str(model.get("storageUri") or "")

    # -- updating in place -----------------------------------------------------------------

    def update_resource(
        self, service: KubernetesModelService, new: dict[str, Any], timeout: float
    ) -> None:
        server = cast(KServeDeploymentService, service)
        percent = server.config.canary_traffic_percent
        if percent is None or percent >= 100:
            self.patch_and_wait(server, new, timeout)
            return
        current = server.fetch()
        if current is None:
            raise DeploymentError(
                f"The InferenceService '{server.resource_name}' of model server {server.uuid} "
                "is gone; delete the server and deploy again."
            )
        mode = (current.get("status") or {}).get("deploymentMode") or server.config.deployment_mode
        if mode in ("RawDeployment", "Standard"):
            self._canary_standard(server, current, new, percent, timeout)
        else:
            self._canary_knative(server, current, new, percent, timeout)

    def _canary_standard(
        self,
        server: KServeDeploymentService,
        current: dict[str, Any],
        new: dict[str, Any],
        percent: int,
        timeout: float,
    ) -> None:
        """Standard mode: the new predictor runs beside the old one as ``spec.canary[]``
        with ``percent`` of the traffic; once ready it becomes ``spec.predictor``."""
        forward, back = spec_patches(current, canary_manifest(current, new, percent, "Standard"))
        server.patch(forward)
        try:
            self._wait_canary(server, timeout)
        except DeploymentError as err:
            server.patch(back)
            raise DeploymentError(
                f"{err} The canary was removed; the previous model keeps serving."
            ) from err
        self.patch_and_wait(server, new, timeout)

    def _wait_canary(self, server: KServeDeploymentService, timeout: float) -> None:
        def ready(resource: dict[str, Any], seen: Observation) -> bool:
            failure = server.canary_failure(resource)
            if failure:
                raise DeploymentError(
                    f"The canary of model server {server.uuid} failed: {failure}."
                )
            return server.canary_ready(resource)

        server.wait_for(ready, timeout, "serving the canary")

    def _canary_knative(
        self,
        server: KServeDeploymentService,
        current: dict[str, Any],
        new: dict[str, Any],
        percent: int,
        timeout: float,
    ) -> None:
        """Knative mode: a new revision with ``canaryTrafficPercent``; once it is ready
        the percentage is removed, so the latest revision takes all the traffic."""
        self.patch_and_wait(server, canary_manifest(current, new, percent, "Knative"), timeout)
        self.patch_and_wait(server, new, timeout)

    # -- the runtime for custom predictors -------------------------------------------------

    def serving_runtime(self, image: str = "") -> dict[str, Any]:
        """The ``shipyard`` ClusterServingRuntime manifest (`shipyard kserve runtime`)."""
        image = image or self.settings.image
        if not image:
            raise ConfigError(
                "The shipyard runtime needs an image with shipyard[serve] installed: build "
                "one from `shipyard build MODEL --output DIR`, push it, and pass --image "
                "(or set the deployer's --image)."
            )
        return cluster_serving_runtime(image, self.settings.runtime_name)

    def apply_serving_runtime(self, image: str = "") -> dict[str, Any]:
        """Create the runtime, or update it in place when it exists."""
        body = self.serving_runtime(image)
        client = self.client()
        if client.get(CLUSTER_SERVING_RUNTIME, body["metadata"]["name"]) is None:
            return client.create(CLUSTER_SERVING_RUNTIME, body)
        return client.patch(CLUSTER_SERVING_RUNTIME, body["metadata"]["name"], body)

    def get_model_server_info(self, service: Any) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, KServeDeploymentService):
            info["DEPLOYMENT_MODE"] = service.deployment_mode or None
            info["STOPPED"] = "yes" if service.status.state == ServiceState.INACTIVE else "no"
        return info
