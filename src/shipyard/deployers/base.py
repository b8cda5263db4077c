"""ModelDeployer: the base of every model-deployer flavor, with the docs' API.

The base class owns the registry (the store's ``services`` table) and the continuous
deployment rules; a flavor implements how to create, update, start and stop its
services (``perform_*``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar, Self

from pydantic import ValidationError

from shipyard._imports import import_object
from shipyard.errors import (
    ConfigError,
    DeploymentError,
    ServiceError,
    ServiceNotFoundError,
    ShipyardError,
    StackError,
)
from shipyard.services.intent import (
    IntentOp,
    confirm_intent,
    intent_in_progress,
    record_intent,
)
from shipyard.services.service import Service, ServiceConfig, service_type_of
from shipyard.stack.component import ComponentType, StackComponent
from shipyard.stack.flavor import describe_validation_errors
from shipyard.stack.stack import Client
from shipyard.store import ServiceRecord, Store

__all__ = ["AmbiguousUUIDError", "BaseModelDeployer", "ModelDeployer"]


class AmbiguousUUIDError(ServiceNotFoundError):
    """A UUID prefix that matches several model servers."""


_NO_DEPLOYER = (
    "The active stack '{stack}' has no model deployer. Register one and put it in a "
    "stack: `shipyard model-deployer register local --flavor=local` then "
    "`shipyard stack register local-stack -a default --orchestrator default -d local --set`."
)


class ModelDeployer(StackComponent):
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

    # -- registry ------------------------------------------------------------------------

    def _save(self, service: Service) -> None:
        config = service.config
        self.store.save_service(
            ServiceRecord(
                uuid=service.uuid,
                deployer_id=self.id,
                flavor=service.flavor or self.flavor,
                service_type=service_type_of(type(service)),
                body=service.to_json(),
                pipeline_name=config.pipeline_name,
                pipeline_step_name=config.pipeline_step_name,
                pipeline_run_id=config.pipeline_run_id,
                model_name=config.model_name,
                model_uri=config.model_uri,
            )
        )

    def _bind(self, service: Service) -> None:
        from shipyard.secrets import SecretStore

        service.bind(self._save)
        service.bind_secrets(SecretStore(self.store).resolve)

    def register_service(self, service: Service) -> Service:
        """Keep ``service`` in the registry, saved again on every change of state."""
        self._bind(service)
        self._save(service)
        return service

    def _load(self, record: ServiceRecord) -> Service:
        try:
            service = Service.from_json(record.body)
        except (ServiceError, StackError) as err:
            raise ServiceError(
                f"The model server {record.uuid} in the registry cannot be loaded: {err}"
            ) from err
        self._bind(service)
        return service

    def resolve_uuid(self, uuid: str) -> str:
        """The full UUID of a model server of this deployer, from a unique prefix."""
        if not str(uuid).strip():
            # An empty prefix matches every server: `delete ''` must not pick one.
            raise ServiceNotFoundError(
                "Give a model server UUID (or a unique prefix of it); see "
                "`shipyard model-deployer models list`."
            )
        matches = [
            m
            for m in self.store.match_service_uuids(str(uuid))
            if (r := self.store.get_service(m)) is not None and r.deployer_id == self.id
        ]
        if not matches:
            raise ServiceNotFoundError(f"No model server with UUID '{uuid}'.")
        if str(uuid) in matches:
            return str(uuid)
        if len(matches) > 1:
            raise AmbiguousUUIDError(
                f"The UUID prefix '{uuid}' matches {len(matches)} model servers; "
                "give more characters."
            )
        return matches[0]

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
        wanted = None if service_type is None else _service_class(service_type)
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
        # Observing must work when nothing can be written (a read-only or full store).
        with service.records_optional():
            service.check_status()
            service.reconcile()
        return service

    def _finish_interrupted(self, service: Service) -> bool:
        """A stop or delete whose caller is gone is finished: it was asked for. Returns
        whether the service is gone."""
        intent = service.intent
        if intent is None or intent.op not in ("stop", "delete") or intent_in_progress(intent):
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

    @contextlib.contextmanager
    def change(
        self,
        service: Service,
        op: IntentOp,
        timeout: float,
        target: ServiceConfig | None = None,
        target_fingerprint: str = "",
    ) -> Iterator[None]:
        """Record ``op`` on ``service`` as desired state, run the body (the act), then
        confirm. A flavor's failure (a ShipyardError) is reconciled at once against what
        the server serves; any other interruption (Ctrl-C, a bug) leaves the intent marked
        abandoned, and a killed caller leaves it as it was: the next status check
        reconciles either. Flavors that act outside ``deploy_model`` use this too."""
        record_intent(service, op, timeout, target, target_fingerprint)
        try:
            yield
        except ShipyardError as err:
            service.reconcile(actor_done=True, error=str(err))
            service.intent = None  # whatever the server does next, we are not acting
            service.persist()
            raise
        except BaseException:
            if service.intent is not None:
                service.intent.abandoned = True
                with contextlib.suppress(Exception):
                    service.persist()
            raise
        confirm_intent(service)

    # -- the docs' lifecycle API ---------------------------------------------------------

    def _coerce_config(self, config: ServiceConfig | dict[str, Any]) -> ServiceConfig:
        if isinstance(config, self.DEPLOYMENT_CONFIG):
            return config
        # Only the fields given: an omitted one must stay "omitted" (see ``_keep_omitted``).
        data = (
            config.model_dump(exclude_unset=True)
            if isinstance(config, ServiceConfig)
            else dict(config)
        )
        try:
            return self.DEPLOYMENT_CONFIG.model_validate(data)
        except ValidationError as err:
            raise DeploymentError(
                f"The deployment config does not fit the '{self.flavor}' model deployer "
                f"({self.DEPLOYMENT_CONFIG.__name__}): "
                f"{describe_validation_errors(self.DEPLOYMENT_CONFIG, err)}"
            ) from err

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
            wanted = _service_class(service_type)
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
            config = _keep_omitted(keep.config, config)
            if keep.is_running and keep.intent is None and self.is_up_to_date(keep, config):
                return keep
            with self._service_lock(keep.uuid, timeout):
                with self.change(keep, "update", timeout, config, self.fingerprint_of(config)):
                    updated = self.perform_update_model(keep, config, timeout)
                return updated

    def _keep_credentials_out(self, config: ServiceConfig) -> ServiceConfig:
        """Credentials in the model URI go into the secrets store; the config (and so
        the registry, the service files and every listing) keeps references to them."""
        from shipyard.secrets import SecretStore, split_credentials

        uri, found = split_credentials(config.model_uri)
        if not found or not self.RESOLVES_SECRETS:
            return config
        secrets = SecretStore(self.store)
        for name, value in found.items():
            secrets.set(name, value)
        return config.model_copy(update={"model_uri": uri})

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


def _service_class(service_type: type[Service] | str) -> type[Service]:
    target: Any = service_type
    if isinstance(service_type, str):
        target = import_object(service_type, error=ConfigError)
    if not (isinstance(target, type) and issubclass(target, Service)):
        raise ConfigError(
            f"service_type must be a Service class or its 'module:Class', not {service_type!r}."
        )
    return target


def _keep_omitted(current: ServiceConfig, new: ServiceConfig) -> ServiceConfig:
    """``new`` with every field its caller did not give taken from ``current``: on a
    redeploy an omitted option means "keep it", never "back to the default" (which would
    turn a model update into a restart, and an outage)."""
    if type(current) is not type(new):
        return new
    given = new.model_fields_set
    merged = {
        key: getattr(new, key) if key in given else getattr(current, key)
        for key in type(new).model_fields
    }
    result = type(new).model_validate(merged)
    # As given by the caller, for the next merge: what was kept counts as given now.
    return result


#: The name ZenML's docs use for the base class.
BaseModelDeployer = ModelDeployer
