"""ModelDeployer: the base of every model-deployer flavor, with the docs' API.

The base class owns finding servers (each observed on the way out), the continuous
deployment rules (``deploy_model`` with ``replace``) and the lifecycle commands; a flavor
implements how to create, update, start and stop its services (``perform_*``). The
records are ``_registry``'s, the change protocol (record intent, act, reconcile) is
``_change``'s, the deployment config's way in is ``_deploy_config``'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from shipyard.deployers._change import change, interrupted_removal, observe
from shipyard.deployers._deploy_config import coerce_config, keep_omitted
from shipyard.deployers._registry import AmbiguousUUIDError, ServiceRegistry, service_class
from shipyard.errors import ConfigError, ServiceNotFoundError, StackError
from shipyard.services.intent import IntentOp, confirm_intent
from shipyard.services.service import Service, ServiceConfig
from shipyard.stack.component import ComponentConfig, ComponentType, StackComponent
from shipyard.stack.stack import Client
from shipyard.store import Store

__all__ = ["AmbiguousUUIDError", "BaseModelDeployer", "DeployerSettings", "ModelDeployer"]

_Settings = TypeVar("_Settings", bound=ComponentConfig, covariant=True)


class DeployerSettings(Generic[_Settings]):
    """A flavor's component config, typed as its class: ``settings =
    DeployerSettings(MyDeployerConfig)`` in the flavor (beside ``CONFIG_CLASS``). A
    component built with another class's config is a StackError naming both, where a
    cast would let it fail later on a missing field."""

    def __init__(self, cls: type[_Settings]) -> None:
        self._cls = cls

    @overload
    def __get__(self, component: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, component: StackComponent, owner: type[Any]) -> _Settings: ...
    def __get__(self, component: StackComponent | None, owner: type[Any]) -> Self | _Settings:
        if component is None:
            return self
        config = component.config
        if not isinstance(config, self._cls):
            raise StackError(
                f"The model deployer '{component.name}' has a {type(config).__name__} "
                f"config, not the {self._cls.__name__} its flavor '{component.flavor}' "
                "takes; register it again with its flavor's options."
            )
        return config


_NO_DEPLOYER = (
    "The active stack '{stack}' has no model deployer. Register one and put it in a "
    "stack: `shipyard model-deployer register local --flavor=local` then "
    "`shipyard stack register local-stack -a default --orchestrator default -d local --set`."
)


class ModelDeployer(ServiceRegistry):
    """Deploys models as services and keeps them in the registry."""

    TYPE: ClassVar[ComponentType] = ComponentType.MODEL_DEPLOYER
    #: The config class ``deploy_model`` accepts (a flavor narrows it).
    DEPLOYMENT_CONFIG: ClassVar[type[ServiceConfig]] = ServiceConfig
    #: The Service class this flavor's servers are (``service_type`` is checked against it).
    SERVICE_CLASS: ClassVar[type[Service]] = Service
    #: Whether this flavor's servers resolve ``{{secret.NAME}}`` in a model URI where they
    #: use it; then credentials in a model URI are moved into the secrets store at deploy.
    RESOLVES_SECRETS: ClassVar[bool] = False

    # -- finding the deployer ------------------------------------------------------------

    @classmethod
    def get_active_model_deployer(cls, store: Store | None = None) -> Self:
        """The model deployer of the active stack (of this class, when called on a flavor)."""
        stack = Client(store).active_stack
        deployer = stack.model_deployer
        if deployer is None:
            raise StackError(_NO_DEPLOYER.format(stack=stack.name))
        if not isinstance(deployer, cls):
            raise StackError(
                f"The active stack's model deployer '{deployer.name}' has the flavor "
                f"'{deployer.flavor}', not {cls.__name__}. Activate a stack with one."
            )
        return deployer

    # -- finding servers ------------------------------------------------------------------

    def get_model_server(self, uuid: str) -> Service:
        """The model server ``uuid`` (or a unique prefix of it), status checked."""
        record = self.store.get_service(self.resolve_uuid(uuid))
        if record is None:
            raise ServiceNotFoundError(f"No model server with UUID '{uuid}'.")
        service = self._load(record)
        self.observe(service)
        if self._finish_interrupted(service):
            raise ServiceNotFoundError(
                f"The model server {record.uuid} was being deleted by a command that was "
                "interrupted; the delete is now finished."
            )
        return service

    def find_model_server(
        self,
        uuid: str | None = None,
        pipeline_name: str | None = None,
        pipeline_run_id: str | None = None,
        pipeline_step_name: str | None = None,
        model_name: str | None = None,
        model_uri: str | None = None,
        running: bool | None = None,
        service_type: type[Service] | str | None = None,
        service_uuid: str | None = None,
    ) -> list[Service]:
        """Model servers matching every given filter, each with a fresh status check.

        ``service_type`` (a Service class, or its ``"module:Class"``) keeps only servers
        of that class or a subclass of it. ``service_uuid`` is ZenML's name for ``uuid``;
        give either.
        """
        if service_uuid is not None:
            if uuid is not None and str(uuid) != str(service_uuid):
                raise ConfigError(
                    f"find_model_server got uuid={uuid!s} and service_uuid={service_uuid!s}; "
                    "they name the same filter: give one."
                )
            uuid = service_uuid
        wanted = None if service_type is None else service_class(service_type)
        records = self.store.find_services(
            uuid=None if uuid is None else str(uuid),
            deployer_id=self.id,
            pipeline_name=pipeline_name,
            pipeline_run_id=None if pipeline_run_id is None else str(pipeline_run_id),
            pipeline_step_name=pipeline_step_name,
            model_name=model_name,
            model_uri=model_uri,
        )
        services = []
        for record in records:
            service = self._load(record)
            if wanted is not None and not isinstance(service, wanted):
                continue
            self.observe(service)
            if self._finish_interrupted(service):
                continue
            if running is None or service.is_running == running:
                services.append(service)
        return services

    # -- desired state first, then reconcile (``services.intent``) ------------------------

    def observe(self, service: Service) -> Service:
        """Check ``service``'s status and reconcile its record with what its server
        serves (finishing or rolling back an interrupted change); what was done is in
        ``status.last_error``."""
        return observe(service)

    def _finish_interrupted(self, service: Service) -> bool:
        """A stop or delete whose caller is gone is finished: it was asked for. Returns
        whether the service is gone."""
        intent = interrupted_removal(service)
        if intent is None:
            return False
        # No service lock here: a finder may run under one already (it is not reentrant),
        # and stopping or deleting twice is harmless.
        if intent.op == "stop":
            self.perform_stop_model(service, 60, True)
            service.status.update(
                service.status.state, f"finished the interrupted {intent.describe()}"
            )
            confirm_intent(service)
            return False
        self.perform_delete_model(service, 60, True)
        self.store.delete_service(service.uuid)
        return True

    def change(
        self,
        service: Service,
        op: IntentOp,
        timeout: float,
        target: ServiceConfig | None = None,
        target_fingerprint: str = "",
    ) -> contextlib.AbstractContextManager[None]:
        """Record ``op`` on ``service`` as desired state, run the body (the act), then
        confirm (``_change.change``). Flavors that act outside ``deploy_model`` use this
        too."""
        return change(service, op, timeout, target, target_fingerprint)

    # -- the docs' lifecycle API ---------------------------------------------------------

    #: Told each phase of a deploy as it begins (copying, loading, health check,
    #: switching): the CLI shows them; None when nobody listens.
    progress: Callable[[str], object] | None = None

    def report(self, phase: str) -> None:
        """Tell ``progress`` (if set) that ``phase`` begins."""
        if self.progress is not None:
            self.progress(phase)

    def _coerce_config(self, config: ServiceConfig | dict[str, Any]) -> ServiceConfig:
        """``config`` as this flavor's ``DEPLOYMENT_CONFIG`` (``_deploy_config``)."""
        return coerce_config(config, self.DEPLOYMENT_CONFIG, self.flavor)

    def deploy_model(
        self,
        config: ServiceConfig | dict[str, Any],
        replace: bool = True,
        timeout: float = 300,
        service_type: type[Service] | str | None = None,
    ) -> Service:
        """Deploy, or continuously re-deploy, a model.

        With ``replace``, a model server of the same pipeline, step and model name is
        updated in place (same UUID and URL); other such servers are stopped and deleted.
        The same config again returns the running server as it is. Without ``replace``,
        a new server is started beside any existing one. ``service_type`` (a Service
        class or ``"module:Class"``) is the kind of server wanted: a deployer whose
        servers are not of that kind refuses with ``ConfigError`` before doing anything.
        """
        if service_type is not None:
            wanted = service_class(service_type)
            if not issubclass(self.SERVICE_CLASS, wanted):
                raise ConfigError(
                    f"The '{self.flavor}' model deployer '{self.name}' runs "
                    f"{self.SERVICE_CLASS.__name__} servers, not {wanted.__name__}; deploy "
                    "with a model deployer of that kind, or leave service_type out."
                )
        config = self._keep_credentials_out(self._coerce_config(config))
        key = (
            f"deploy:{self.id}:{config.pipeline_name}\0{config.pipeline_step_name}"
            f"\0{config.model_name}"
        )
        # One deployment per model at a time, across processes: no lost or double deploy.
        with self.store.lock(key, timeout=timeout + 60):
            existing = (
                []
                if not replace
                else self.find_model_server(
                    pipeline_name=config.pipeline_name,
                    pipeline_step_name=config.pipeline_step_name,
                    model_name=config.model_name,
                )
            )
            if not existing:
                return self.perform_deploy_model(config, timeout)
            existing.sort(key=lambda s: (not s.is_running, s.uuid))
            keep, duplicates = existing[0], existing[1:]
            for duplicate in duplicates:
                self.delete_model_server(duplicate.uuid, timeout=timeout, force=False)
            config = keep_omitted(keep.config, config)
            if keep.is_running and keep.intent is None and self.is_up_to_date(keep, config):
                return keep
            with self._service_lock(keep.uuid, timeout):
                with self.change(keep, "update", timeout, config, self.fingerprint_of(config)):
                    updated = self.perform_update_model(keep, config, timeout)
                return updated

    def _keep_credentials_out(self, config: ServiceConfig) -> ServiceConfig:
        """Credentials in the model URI go into the secrets store; the config (and so
        the registry, the service files and every listing) keeps references to them."""
        if not self.RESOLVES_SECRETS:
            return config
        uri = self._stored_uri(config.model_uri)
        return config if uri == config.model_uri else config.model_copy(update={"model_uri": uri})

    def _stored_uri(self, uri: str) -> str:
        """``uri`` as it may be stored: its credentials moved into the secrets store,
        references to them in their place."""
        from shipyard.secrets import SecretStore, split_credentials

        stored, found = split_credentials(uri)
        for name, value in found.items():
            SecretStore(self.store).set(name, value)
        return stored

    def _usable_uri(self, uri: str) -> str:
        """``uri`` with its secret references resolved, to fetch the model or talk to a
        registry (never stored: the config keeps the references)."""
        from shipyard.secrets import SecretStore, has_references

        return SecretStore(self.store).resolve(uri) if has_references(uri) else uri

    def _service_lock(self, uuid: str, timeout: float) -> Any:
        # Two commands acting on one server at once (start and stop, two starts) take turns.
        return self.store.lock(f"service:{uuid}", timeout=timeout + 60)

    def start_model_server(self, uuid: str, timeout: float = 60) -> Service:
        full = self.resolve_uuid(uuid)
        with self._service_lock(full, timeout):
            service = self.get_model_server(full)
            with self.change(service, "start", timeout):
                self.perform_start_model(service, timeout)
        return service

    def stop_model_server(self, uuid: str, timeout: float = 60, force: bool = False) -> Service:
        full = self.resolve_uuid(uuid)
        with self._service_lock(full, timeout):
            service = self.get_model_server(full)
            # Stopping must work when nothing can be written: the server stops, and the
            # next command that can write records it (``service.unrecorded`` says why not).
            with service.records_optional(), self.change(service, "stop", timeout):
                self.perform_stop_model(service, timeout, force)
        return service

    def delete_model_server(self, uuid: str, timeout: float = 60, force: bool = False) -> None:
        full = self.resolve_uuid(uuid)
        with self._service_lock(full, timeout):
            service = self.get_model_server(full)
            with self.change(service, "delete", timeout):
                self.perform_delete_model(service, timeout, force)
            # After the change is confirmed: confirming saves the record once more.
            self.store.delete_service(service.uuid)

    #: The name the model-deployer docs use.
    delete_service = delete_model_server

    def get_model_server_logs(
        self, uuid: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]:
        return self.get_model_server(uuid).get_logs(follow=follow, tail=tail)

    def get_model_server_info(self, service: Service) -> dict[str, str | None]:
        """What to show about a server, flavor-specific keys included."""
        return {
            "PREDICTION_URL": service.prediction_url,
            "MODEL_URI": service.config.model_uri,
            "MODEL_NAME": service.config.model_name,
        }

    def render_deployment(self, config: ServiceConfig | dict[str, Any]) -> list[dict[str, Any]]:
        """What ``deploy_model`` would apply, as data, with nothing done (``--dry-run``).

        Kubernetes flavors return the manifests; the base returns the validated config.
        """
        checked = self._coerce_config(config)
        return [{"flavor": self.flavor, "config": checked.model_dump(mode="json")}]

    # -- what a flavor implements ----------------------------------------------------------

    def is_up_to_date(self, service: Service, config: ServiceConfig) -> bool:
        """Whether ``service`` already serves ``config`` (then deploying it is a no-op):
        the record says so and, where the server can tell, the server agrees."""
        if service.config != config:
            return False
        served = service.served_model()
        return served is None or (
            not served.changing and served.matches(config.model_uri, self.fingerprint_of(config))
        )

    def fingerprint_of(self, config: ServiceConfig) -> str:
        """The fingerprint of ``config``'s model files, where the flavor has one."""
        return ""

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        """Create, register and start a new service for ``config``."""
        raise NotImplementedError

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        """Switch ``service`` to ``config`` keeping its UUID and URL; on failure the old
        model keeps serving and a DeploymentError says why."""
        raise NotImplementedError

    def perform_start_model(self, service: Service, timeout: float) -> None:
        service.start(timeout=timeout)

    def perform_stop_model(self, service: Service, timeout: float, force: bool) -> None:
        service.stop(timeout=timeout, force=force)

    def perform_delete_model(self, service: Service, timeout: float, force: bool) -> None:
        service.delete(timeout=timeout, force=force)


#: The name ZenML's docs use for the base class.
BaseModelDeployer = ModelDeployer
