"""The registry half of a model deployer: its servers' records in the store's
``services`` table, saved on every change of state, loaded bound to the registry, and
named by a UUID or a unique prefix of it."""

from __future__ import annotations

from typing import Any

from shipyard._imports import import_object
from shipyard.errors import ConfigError, ServiceError, ServiceNotFoundError, StackError
from shipyard.services.service import Service, service_type_of
from shipyard.stack.component import StackComponent
from shipyard.store import ServiceRecord

__all__ = ["AmbiguousUUIDError", "ServiceRegistry", "service_class"]


class AmbiguousUUIDError(ServiceNotFoundError):
    """A UUID prefix that matches several model servers."""


class ServiceRegistry(StackComponent):
    """A stack component whose servers are kept in its store's registry
    (``ModelDeployer`` adds finding them with a status check, and deploying)."""

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


def service_class(service_type: type[Service] | str) -> type[Service]:
    """The Service class ``service_type`` names (the class, or its ``"module:Class"``)."""
    target: Any = service_type
    if isinstance(service_type, str):
        target = import_object(service_type, error=ConfigError)
    if not (isinstance(target, type) and issubclass(target, Service)):
        raise ConfigError(
            f"service_type must be a Service class or its 'module:Class', not {service_type!r}."
        )
    return target
