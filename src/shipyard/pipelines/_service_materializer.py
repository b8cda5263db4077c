"""Services through the artifact store: ``service.json`` out, the live Service back in.

A Service artifact stands for a model server, not a value: reading it back asks the
registry for that UUID, so the step gets the server as it is now (status checked), bound
to its deployer. A server deleted since then comes back as an inactive Service whose
``status.last_error`` says so, not as a crash.

The registry is the store the materializer is given (the orchestrator's, or the one a
run was read from); it never opens one itself. Never cached (``cacheable = False``): a
Service stands for a live server, not a value.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any, ClassVar

import fsspec
from pydantic import BaseModel

from shipyard.errors import ShipyardError
from shipyard.pipelines._errors import ArtifactError

if TYPE_CHECKING:
    from shipyard.services import Service
    from shipyard.store import Store

__all__ = ["ServiceMaterializer"]

_FILE = "service.json"


class ServiceMaterializer:
    """A model server (Service): saved as ``service.json``, loaded as the live Service."""

    name: ClassVar[str] = "service"
    #: Outputs it writes are never reused from the cache (see the module docstring).
    cacheable: ClassVar[bool] = False

    def __init__(self, store: Store | None = None) -> None:
        self.store = store

    def can_save(self, value: Any) -> bool:
        if not isinstance(value, BaseModel):
            # Services are pydantic models; anything else skips the services import.
            return False
        from shipyard.services import Service

        return isinstance(value, Service)

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        with fsspec.open(posixpath.join(uri, _FILE), "w") as handle:
            handle.write(value.to_json())
        return {
            "uuid": value.uuid,
            "prediction_url": value.prediction_url,
            "state": value.status.state.value,
            "model_uri": value.config.model_uri,
        }

    def load(self, uri: str) -> Any:
        from shipyard.services import Service

        if self.store is None:
            raise ArtifactError(
                f"The Service artifact at '{uri}' is read through the model server registry, "
                "and no store was given: read it from a run (`run.steps[NAME].load()` on a "
                "run from a pipeline call or `shipyard.pipelines.get_run`)."
            )
        try:
            with fsspec.open(posixpath.join(uri, _FILE), "r") as handle:
                saved = Service.from_json(handle.read())
        except (OSError, ShipyardError) as err:
            raise ArtifactError(f"Cannot read the service artifact at '{uri}': {err}") from err
        live = _live_service(self.store, saved.uuid)
        if live is not None:
            return live
        _mark_deleted(saved)
        return saved


def _live_service(store: Store, uuid: str) -> Service | None:
    """The registry's service ``uuid``, bound to its deployer and status-checked."""
    from shipyard.deployers.base import ModelDeployer
    from shipyard.stack.registry import FlavorRegistry

    record = store.get_service(uuid)
    if record is None or record.deployer_id is None:
        return None
    component = store.get_component_by_id(record.deployer_id)
    if component is None:
        return None
    deployer = FlavorRegistry(store).instantiate(component, store)
    if not isinstance(deployer, ModelDeployer):
        return None
    return deployer.get_model_server(uuid)


def _mark_deleted(service: Service) -> None:
    from shipyard.services import ServiceState

    service.admin_state = ServiceState.INACTIVE
    service.status.update(
        ServiceState.INACTIVE,
        f"The model server {service.uuid} was deleted after this artifact was saved; "
        "it no longer runs. Deploy the model again (e.g. re-run the pipeline) to get a "
        "new server.",
    )
