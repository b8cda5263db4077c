"""KubernetesModelDeployer: what the ``kserve`` and ``seldon`` deployers share.

Deploy creates the resource and waits for the operator to report it ready; update
patches it in place (same name, same URL) and reverts the patch if the new model fails;
``find_model_server`` first adopts resources the store does not know (a lost or fresh
store): their labels and annotations carry the service UUID and the deployment config.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar, cast

from shipyard.deployers._kubernetes._client import KubernetesClient
from shipyard.deployers._kubernetes._config import (
    KubernetesDeployerConfig,
    KubernetesDeploymentConfig,
)
from shipyard.deployers._kubernetes._labels import (
    ANNOTATION_CONFIG,
    ANNOTATION_SERVICE_TYPE,
    LABEL_UUID,
    annotations_of,
    ownership,
    selector,
)
from shipyard.deployers._kubernetes._patch import spec_patches
from shipyard.deployers._kubernetes._pod_secret import PodSecrets, references_only
from shipyard.deployers._kubernetes._secrets import pod_secret_name, storage_credentials
from shipyard.deployers._kubernetes._service import KubernetesModelService, Observation
from shipyard.deployers._kubernetes._storage import ModelFacts, inspect_model, upload_model
from shipyard.deployers._kubernetes._trust import check_deploy_trust
from shipyard.deployers.base import DeployerSettings, ModelDeployer
from shipyard.errors import DeploymentError, ServiceError
from shipyard.services.service import Service, ServiceConfig, service_type_of
from shipyard.services.state import ServiceState

__all__ = ["KubernetesModelDeployer"]


#: Seconds an operator without observedGeneration gets to leave "ready" after a patch.
SETTLE_SECONDS = 5.0
#: Most seconds to wait for the previous spec to be served again after a failed update.
RESTORE_WAIT = 60.0


class KubernetesModelDeployer(PodSecrets, ModelDeployer):
    """A model deployer whose services are custom resources; flavors build the manifest."""

    SERVICE_CLASS: ClassVar[type[KubernetesModelService]]
    #: Credentials in a model URI go into the secrets store (the stored config keeps
    #: references) and reach the pods through their Kubernetes Secret.
    RESOLVES_SECRETS: ClassVar[bool] = True

    _client: KubernetesClient | None = None

    settings = DeployerSettings(KubernetesDeployerConfig)

    def client(self) -> KubernetesClient:
        if self._client is None:
            self._client = KubernetesClient(self.settings.cluster())
        return self._client

    # -- what a flavor implements ----------------------------------------------------------

    def make_service(self, config: ServiceConfig) -> KubernetesModelService:
        """The service object for ``config`` (names, cluster), without any I/O."""
        raise NotImplementedError

    def build_manifest(self, service: KubernetesModelService) -> dict[str, Any]:
        """The whole resource for ``service`` (its config, its storage URI)."""
        raise NotImplementedError

    def extra_manifests(self, service: KubernetesModelService) -> list[dict[str, Any]]:
        """Other resources the service needs (applied before it), e.g. a ServiceAccount."""
        return []

    def apply_extra(self, service: KubernetesModelService) -> None:
        """Create or update what ``extra_manifests`` lists."""

    def update_resource(
        self, service: KubernetesModelService, new: dict[str, Any], timeout: float
    ) -> None:
        """Move the running resource to the ``new`` manifest; revert and raise on failure."""
        self.patch_and_wait(service, new, timeout)

    def runs_shipyard_server(self, service: KubernetesModelService) -> bool:
        """Whether the pods run ``shipyard serve`` (a token and a trust decision apply)."""
        return False

    def code_risk(self, service: KubernetesModelService, facts: ModelFacts) -> str | None:
        """What in a remote model runs code when the pods load it, if the flavor can tell
        (its runtime loads pickles); None: nothing, or the pod's own loader decides."""
        return None

    # -- shared pieces ---------------------------------------------------------------------

    def new_service(self, config: ServiceConfig, dry_run: bool = False) -> KubernetesModelService:
        """The service for ``config``, its model uploaded (unless ``dry_run``), not saved.

        A remote model that runs code when loaded is refused here unless trusted (see
        ``_trust``): before anything is uploaded or sent to the cluster."""
        service = self.make_service(config)
        settings = self.settings
        # The URI without its credentials (they reach the pods through the Secret).
        plain, _ = storage_credentials(config.model_uri, lambda text: text)
        facts = inspect_model(plain)
        config = cast(KubernetesDeploymentConfig, service.config)
        service.model_trusted = check_deploy_trust(
            plain,
            remote=facts.local_dir is None,
            risk=self.code_risk(service, facts),
            trusted=config.trusted,
            sha256=config.sha256,
            checks_pin=self.runs_shipyard_server(service),
        )
        service.storage_uri = upload_model(
            facts,
            config.model_name or "model",
            settings.model_store,
            settings.model_store_uri,
            dry_run=dry_run,
        )
        return service

    def manifest(self, service: KubernetesModelService) -> dict[str, Any]:
        """``build_manifest`` plus the ownership labels and annotations."""
        body = self.build_manifest(service)
        labels, annotations = ownership(
            self.flavor,
            service.uuid,
            service_type_of(type(service)),
            service.config.model_dump(mode="json"),
        )
        metadata = body.setdefault("metadata", {})
        metadata.setdefault("labels", {}).update(labels)
        metadata.setdefault("annotations", {}).update(annotations)
        return body

    def render_deployment(self, config: ServiceConfig | dict[str, Any]) -> list[dict[str, Any]]:
        """The manifests ``deploy_model`` would apply (``--dry-run``): nothing is sent or
        uploaded."""
        from shipyard.secrets import reference_form

        config = self._coerce_config(config)
        # As deploy_model would store it (references), but nothing is written.
        shown = config.model_copy(update={"model_uri": reference_form(config.model_uri)})
        service = self.new_service(references_only(shown, None), dry_run=True)
        secret = self.pod_secret(service, masked=True)
        return [
            *([secret] if secret else []),
            *self.extra_manifests(service),
            self.manifest(service),
        ]

    def _attach(self, service: KubernetesModelService) -> KubernetesModelService:
        service.use_client(self.client())
        return service

    def patch_and_wait(
        self, service: KubernetesModelService, new: dict[str, Any], timeout: float
    ) -> None:
        """Patch the resource to ``new``; wait until the operator serves it; on failure
        patch the previous spec back (the old model keeps serving) and raise."""
        current = service.fetch()
        if current is None:
            raise DeploymentError(
                f"The model server {service.uuid} has no {service.RESOURCE.kind} "
                f"'{service.resource_name}' any more; delete it and deploy again."
            )
        forward, back = spec_patches(current, new)
        answer = service.patch(forward)
        generation = (answer.get("metadata") or {}).get("generation")
        # An operator without observedGeneration (Seldon) still shows the old state for a
        # moment: trust "ready" once it has been not-ready since the patch, or has stayed
        # ready for SETTLE_SECONDS.
        moved = [service.TRACKS_GENERATION]
        since = time.monotonic()

        def done(resource: dict[str, Any], seen: Observation) -> bool:
            if seen.state != ServiceState.ACTIVE or not _observed(resource, generation):
                moved[0] = True
                return False
            return moved[0] or time.monotonic() - since >= SETTLE_SECONDS

        try:
            service.wait_for(done, timeout, "serving the new model")
        except DeploymentError as err:
            restored = service.patch(back)
            raise DeploymentError(
                f"{err} The previous model keeps serving (its spec was restored)."
                + self._settle_restored(service, restored, timeout)
            ) from err

    def _settle_restored(
        self, service: KubernetesModelService, restored: dict[str, Any], timeout: float
    ) -> str:
        """Wait (briefly) until the operator serves the restored spec again, so the
        registry says what runs; '' when it does, else a note saying it is on its way."""
        generation = (restored.get("metadata") or {}).get("generation")
        since = time.monotonic()

        def back_again(resource: dict[str, Any], seen: Observation) -> bool:
            settled = service.TRACKS_GENERATION or time.monotonic() - since >= 1.0
            return seen.state == ServiceState.ACTIVE and _observed(resource, generation) and settled

        try:
            service.wait_for(back_again, min(timeout, RESTORE_WAIT), "serving the previous model")
        except DeploymentError as err:
            return f" (Not yet confirmed by the operator: {err})"
        return ""

    # -- the lifecycle ---------------------------------------------------------------------

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        service = self._attach(self.new_service(config))
        body = self.manifest(service)
        # The Secret first: the pods find their token and credentials when they start.
        self.apply_secret(service)
        try:
            self.apply_extra(service)
            created = self.client().create(service.RESOURCE, body)
        except ServiceError:
            if service.secret:
                self.client().delete_secret(service.secret)
            raise
        if service.secret:
            self.apply_secret(service, owner=created)
        service.admin_state = ServiceState.ACTIVE
        self.register_service(service)
        try:
            service.wait_for(lambda _, seen: seen.state == ServiceState.ACTIVE, timeout, "ready")
        except DeploymentError as err:
            service.check_status()
            if service.status.state == ServiceState.ERROR:
                # The operator said no (the model does not load): nothing useful is left
                # in the cluster or the registry, and the error says why.
                service.delete()
                self.store.delete_service(service.uuid)
            else:
                service.status.update(service.status.state, str(err))
                service.persist()
            raise
        service.check_status()
        return service

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        server = self._attach(cast(KubernetesModelService, service))
        old_config, old_uri = server.config, server.storage_uri
        fresh = self.new_service(config)
        server.config, server.storage_uri = fresh.config, fresh.storage_uri
        try:
            self.apply_secret(server, owner=server.fetch())
            self.apply_extra(server)
            self.update_resource(server, self.manifest(server), timeout)
        except ServiceError as err:  # the operator's "no", or the API server's
            server.config, server.storage_uri = old_config, old_uri
            server.check_status()
            server.status.update(server.status.state, str(err))
            server.persist()
            raise
        server.admin_state = ServiceState.ACTIVE
        server.persist()
        server.check_status()
        return server

    def _keep_credentials_out(self, config: ServiceConfig) -> ServiceConfig:
        """Also a credential-named ``env`` value (``AWS_SECRET_ACCESS_KEY=...``): into the
        secrets store, the stored config keeps a reference (the pods get it through
        their Secret)."""
        from shipyard.secrets import SecretStore

        return references_only(super()._keep_credentials_out(config), SecretStore(self.store).set)

    def is_up_to_date(self, service: Service, config: ServiceConfig) -> bool:
        if not super().is_up_to_date(service, config):
            return False
        # A local model saved again at the same path has a new digest, so a new URI.
        fresh = self.new_service(config, dry_run=True)
        return cast(KubernetesModelService, service).storage_uri == fresh.storage_uri

    def perform_start_model(self, service: Service, timeout: float) -> None:
        self._attach(cast(KubernetesModelService, service)).start(timeout=timeout)

    def perform_stop_model(self, service: Service, timeout: float, force: bool) -> None:
        self._attach(cast(KubernetesModelService, service)).stop(timeout=timeout, force=force)

    def perform_delete_model(self, service: Service, timeout: float, force: bool) -> None:
        self._attach(cast(KubernetesModelService, service)).delete(timeout=timeout, force=force)

    # -- the registry, rebuilt from the cluster ------------------------------------------

    def adopt_cluster_resources(self) -> list[Service]:
        """Register every resource of this flavor in the namespace that the store does not
        know (found by its labels; its config read back from its annotations)."""
        adopted: list[Service] = []
        for resource in self.client().list(self.SERVICE_CLASS.RESOURCE, selector(self.flavor)):
            metadata = resource.get("metadata") or {}
            labels = metadata.get("labels") or {}
            uuid = labels.get(LABEL_UUID)
            if not uuid or labels.get("shipyard.dev/flavor") != self.flavor:
                continue  # an API server that ignores the selector: filter here too
            if self.store.get_service(uuid) is not None:
                continue
            service = self._rebuild(uuid, resource)
            if service is not None:
                self.register_service(service)
                adopted.append(service)
        return adopted

    def _rebuild(self, uuid: str, resource: dict[str, Any]) -> KubernetesModelService | None:
        annotations = annotations_of(resource)
        if annotations.get(ANNOTATION_SERVICE_TYPE) != service_type_of(self.SERVICE_CLASS):
            return None
        try:
            config = self.DEPLOYMENT_CONFIG.model_validate(
                json.loads(annotations.get(ANNOTATION_CONFIG, "{}"))
            )
        except ValueError:
            return None  # written by another version: leave it to that one
        service = self.make_service(config)
        service.uuid = uuid
        service.resource_name = resource["metadata"]["name"]
        service.storage_uri = self.storage_uri_of(resource)
        service.served_name = self.served_name_of(resource) or service.served_name
        service.admin_state = ServiceState.ACTIVE
        self._attach(service)
        if self.client().get_secret(pod_secret_name(service.resource_name)) is not None:
            service.secret = pod_secret_name(service.resource_name)
        return service

    def storage_uri_of(self, resource: dict[str, Any]) -> str:
        """The model URI the resource's pods download (flavor-specific path)."""
        return ""

    def served_name_of(self, resource: dict[str, Any]) -> str:
        """The model's name in V2 paths, as the resource says."""
        return str((resource.get("metadata") or {}).get("name") or "")

    def find_model_server(self, *args: Any, **kwargs: Any) -> list[Service]:
        self.adopt_cluster_resources()
        return super().find_model_server(*args, **kwargs)

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        info = super().get_model_server_info(service)
        if isinstance(service, KubernetesModelService):
            info.update(
                {
                    "RESOURCE": f"{service.RESOURCE.kind}/{service.resource_name}",
                    "NAMESPACE": service.cluster.namespace,
                    "STORAGE_URI": service.storage_uri,
                    "STATUS_URL": service.url or None,
                    "HOST_HEADER": service.host_header,
                    "SECRET": service.secret or None,
                }
            )
        return info


def _observed(resource: dict[str, Any], generation: Any) -> bool:
    """Whether the operator's status speaks about ``generation`` of the spec (or later)."""
    if generation is None:
        return True
    observed = (resource.get("status") or {}).get("observedGeneration")
    return observed is None or int(observed) >= int(generation)
