"""Service: a model server the control plane manages, as a JSON-serializable object.

The desired state (``admin_state``: what the user asked for) and the observed state
(``status.state``: what ``check_status()`` last saw) are separate fields; a status check
reconciles them, so a server killed behind the registry's back shows up as it is.
"""

from __future__ import annotations

import contextlib
import json
import uuid as uuid_module
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from shipyard._imports import import_object
from shipyard.errors import ServiceError, StoreUnwritableError
from shipyard.services.endpoints import ServiceEndpoint
from shipyard.services.intent import Intent, ServedModel
from shipyard.services.state import ServiceState, check_transition

__all__ = ["Service", "ServiceConfig", "ServiceStatus", "service_type_of"]


class ServiceConfig(BaseModel):
    """What to run; the pipeline/step/model names identify it for continuous deployment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", description="Free-form service name.")
    description: str = ""
    pipeline_name: str = Field(default="", description="Pipeline that deployed it.")
    pipeline_step_name: str = Field(default="", description="Step that deployed it.")
    pipeline_run_id: str = Field(default="", description="Run that deployed it.")
    model_name: str = Field(default="", description="Name the model is served under.")
    model_uri: str = Field(default="", description="Where the model comes from.")

    @model_validator(mode="before")
    @classmethod
    def _stringify_ids(cls, data: Any) -> Any:
        # Docs pass ``pipeline_run.id`` (a UUID object); keep it as text.
        if isinstance(data, dict) and not isinstance(data.get("pipeline_run_id", ""), str):
            data = {**data, "pipeline_run_id": str(data["pipeline_run_id"])}
        return data


class ServiceStatus(BaseModel):
    """The observed state and the most recent failure."""

    model_config = ConfigDict(extra="forbid")

    state: ServiceState = ServiceState.INACTIVE
    last_state: ServiceState = ServiceState.INACTIVE
    last_error: str = ""
    updated: datetime | None = None

    def update(self, state: ServiceState, error: str | None = None) -> bool:
        """Record an observation; ``error`` (when given) becomes ``last_error``.

        Returns whether anything changed. A move the lifecycle does not allow (see
        ``services.state.TRANSITIONS``) raises ``IllegalTransitionError``.
        """
        check_transition(self.state, state)
        changed = state != self.state or (error is not None and error != self.last_error)
        if state != self.state:
            self.last_state = self.state
            self.state = state
        if error is not None:
            self.last_error = error
        if changed:
            self.updated = datetime.now(UTC)
        return changed


def service_type_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class Service(BaseModel):
    """Base of every service. Subclasses implement start, stop and check_status."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Import path of the concrete class, so JSON comes back as the same class.
    type: str = ""
    uuid: str = Field(default_factory=lambda: str(uuid_module.uuid4()))
    flavor: str = ""
    admin_state: ServiceState = ServiceState.INACTIVE
    config: ServiceConfig = Field(default_factory=ServiceConfig)
    status: ServiceStatus = Field(default_factory=ServiceStatus)
    endpoint: ServiceEndpoint = Field(default_factory=ServiceEndpoint)
    #: A change recorded before it was made and not yet confirmed (``services.intent``).
    intent: Intent | None = None

    _on_change: Callable[[Service], None] | None = PrivateAttr(default=None)
    _resolve_secrets: Callable[[str], str] | None = PrivateAttr(default=None)
    _records_optional: bool = PrivateAttr(default=False)
    #: Why the last change of state could not be recorded ("" when it was).
    _unrecorded: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _set_type(self) -> Service:
        expected = service_type_of(type(self))
        if self.type != expected:
            object.__setattr__(self, "type", expected)
        return self

    # -- serialization -------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Service:
        """Rebuild the live service (of its own class) from :meth:`to_json` output."""
        try:
            data = json.loads(text)
            type_path = data["type"]
        except (ValueError, KeyError, TypeError) as err:
            raise ServiceError(f"Not a serialized service: {err}") from err
        target = import_object(type_path)
        if not (isinstance(target, type) and issubclass(target, cls)):
            raise ServiceError(f"'{type_path}' is not a {cls.__name__} class.")
        return target.model_validate(data)

    # -- persistence ---------------------------------------------------------------------

    def bind(self, on_change: Callable[[Service], None] | None) -> None:
        """Call ``on_change(self)`` after every state change (the registry saves it)."""
        self._on_change = on_change

    def bind_secrets(self, resolve: Callable[[str], str] | None) -> None:
        """Give the service the secrets of its registry: ``resolve(text)`` replaces each
        ``{{secret.NAME}}`` in ``text`` by its value (see ``shipyard.secrets``)."""
        self._resolve_secrets = resolve

    def resolve_secrets(self, text: str) -> str:
        """``text`` with its secret references resolved: only where the value is used
        (a server's environment), never in what is stored or shown."""
        if "{{" not in text:
            return text
        if self._resolve_secrets is None:
            raise ServiceError(
                f"The service {self.uuid} refers to a secret ({text}) but "
                "was not loaded through a model deployer, which holds the secrets store."
            )
        return self._resolve_secrets(text)

    def persist(self) -> None:
        """Save the current state wherever this service is kept (the registry)."""
        if self._on_change is not None:
            try:
                self._on_change(self)
            except StoreUnwritableError as err:
                self.not_recorded(err)

    @contextlib.contextmanager
    def records_optional(self) -> Iterator[None]:
        """Within: a state change the registry cannot record (a read-only or full store)
        is kept in memory and in :attr:`unrecorded`, not raised. For what must work when
        nothing can be written: observing a server (list, describe, logs) and stopping
        it; the next command that can write records what it then observes."""
        before = self._records_optional
        self._records_optional = True
        try:
            yield
        finally:
            self._records_optional = before

    def not_recorded(self, err: StoreUnwritableError) -> None:
        """A write of this service's record failed: raise, unless records are optional."""
        if not self._records_optional:
            raise err
        self._unrecorded = str(err)

    @property
    def unrecorded(self) -> str:
        """Why the last change of state was not recorded ("" if it was)."""
        return self._unrecorded

    # -- desired state and reconciliation (``services.intent``) ---------------------------

    #: Whether ``served_model()`` asks the server (True) or the flavor cannot tell. A
    #: flavor that cannot (a Kubernetes resource is its own desired state; a flavor
    #: that rolls back itself) keeps its record as its own act left it.
    REPORTS_SERVED_MODEL: ClassVar[bool] = False

    def served_model(self) -> ServedModel | None:
        """What the running server serves, asked from the server itself; None when it is
        not running or the flavor cannot tell (then only the record is known)."""
        return None

    def recorded_fingerprint(self) -> str:
        """The fingerprint of the model files the record says are deployed ("" if none)."""
        return ""

    def apply_config(self, config: dict[str, Any], fingerprint: str = "") -> None:
        """Make the record say ``config`` (and ``fingerprint``) is deployed; flavors whose
        service keeps more than ``config`` (ports, workers) override it."""
        self.config = type(self.config).model_validate(config)

    def reconcile(self, *, actor_done: bool = False, error: str | None = None) -> str | None:
        """Finish or roll back an interrupted change; see ``services.intent.reconcile``."""
        from shipyard.services.intent import reconcile

        return reconcile(self, actor_done=actor_done, error=error)

    # -- lifecycle (subclasses) ----------------------------------------------------------

    def check_status(self) -> tuple[ServiceState, str]:
        """Observe the service, update ``status``; returns (state, last_error)."""
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 60.0, force: bool = False) -> None:
        raise NotImplementedError

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        """Stop and remove whatever the service left on disk."""
        self.stop(timeout=timeout, force=force)

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Generator[str, None, None]:
        raise ServiceError(f"The service {self.uuid} keeps no logs.")

    def predict(self, data: Any) -> Any:
        raise ServiceError(f"The service {self.uuid} does not serve predictions.")

    def request_headers(self) -> dict[str, str]:
        """Headers every request to this service must carry (its bearer token, when it
        requires one); reads the token from its private file, so call it per use."""
        return {}

    # -- what the last check saw ---------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """Active and healthy at the last ``check_status()`` (finders check first)."""
        return self.status.state == ServiceState.ACTIVE

    @property
    def is_stopped(self) -> bool:
        return self.status.state == ServiceState.INACTIVE

    @property
    def is_failed(self) -> bool:
        return self.status.state == ServiceState.ERROR

    @property
    def prediction_url(self) -> str | None:
        return None

    @property
    def model_version(self) -> str:
        """The model version served, when the flavor resolves one (a registry version)."""
        return ""

    def __str__(self) -> str:
        return f"{type(self).__name__}[{self.uuid}] ({self.status.state.value})"
