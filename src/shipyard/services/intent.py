"""Desired state first, then reconcile: the one mechanism every flavor uses to keep the
registry and the running servers in agreement.

A change to a service (deploy, update, start, stop, delete) goes through three steps:

1. **record** (:func:`record_intent`): the target config, the fingerprint of the target
   model, the config it replaces, the caller's deadline and who is acting (pid and process
   start time) are written into the service's registry record *before* anything is done;
2. **act**: the flavor does the work, passing the deadline on to whatever runs the model
   (the local supervisor abandons a reload whose deadline has passed or whose caller hung
   up);
3. **confirm** (:func:`confirm_intent`): the record is cleared once the change is done or
   cleanly refused (the flavor has then restored the previous state itself).

When a caller is interrupted between 1 and 3 (a timeout, a killed CLI, an exception), the
record stays behind. Every status check then runs :func:`reconcile`: as long as the actor
is alive and within its deadline the change is shown as under way; after that, what the
server actually serves (:meth:`Service.served_model`: model URI and fingerprint) decides:

* it serves the target: the change is finished (the registry takes the target config);
* it serves the previous model: the change is rolled back (the registry keeps the old
  config and ``last_error`` says what was interrupted);
* anything else: the registry takes what is served and ``last_error`` says so.

Even with no intent recorded, a server that serves something other than what its record
says is corrected the same way, so the registry never claims a model that is not served,
and redeploying a model is never mistaken for a no-op (``is_up_to_date`` compares with the
server). A flavor implements :meth:`Service.served_model` (and, if its config needs more
than assignment, :meth:`Service.apply_config`); the deployer base does the rest.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.services import process

if TYPE_CHECKING:
    from shipyard.services.service import Service, ServiceConfig

__all__ = [
    "GRACE_S",
    "Intent",
    "IntentOp",
    "ServedModel",
    "confirm_intent",
    "intent_in_progress",
    "reconcile",
    "record_intent",
]

IntentOp = Literal["deploy", "update", "start", "stop", "delete"]

#: Seconds past its deadline an actor may still take to write down its outcome.
GRACE_S = 10.0


class Intent(BaseModel):
    """A change recorded before it is made (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    op: IntentOp
    """What is being done."""
    target: dict[str, Any] | None = None
    """The config being deployed (``deploy``/``update``), as ``model_dump()``."""
    target_fingerprint: str = ""
    """Fingerprint of the target model's files (local models; empty otherwise)."""
    previous: dict[str, Any] | None = None
    """The config the service had before, to roll back to."""
    previous_fingerprint: str = ""
    """Fingerprint the service had before."""
    deadline: float
    """Epoch seconds after which the actor has given up."""
    actor_pid: int = Field(default_factory=os.getpid)
    """The process making the change."""
    actor_start: int | None = Field(default_factory=lambda: process.process_start_time(os.getpid()))
    """Kernel start time of that process (a reused pid is not the actor)."""
    abandoned: bool = False
    """Set by the actor itself when it was interrupted (an exception escaped)."""
    recorded: datetime = Field(default_factory=lambda: datetime.now(UTC))
    """When the change was recorded."""

    def describe(self) -> str:
        uri = (self.target or {}).get("model_uri")
        what = f"{self.op} to {uri}" if uri and self.op in ("deploy", "update") else self.op
        return f"{what} (recorded {self.recorded:%Y-%m-%d %H:%M:%S} UTC by pid {self.actor_pid})"


class ServedModel(BaseModel):
    """What a running server reports it serves (the local flavor: control ``status``)."""

    model_config = ConfigDict(extra="forbid")

    model_uri: str
    """The URI of the model being served."""
    fingerprint: str = ""
    """The fingerprint of its files when they were loaded (empty: not known)."""
    changing: bool = False
    """A change (a reload) is under way inside the server right now."""

    def matches(self, model_uri: str, fingerprint: str) -> bool:
        """Whether this is ``model_uri`` with files of ``fingerprint`` (unknown matches)."""
        return self.model_uri == model_uri and (
            not fingerprint or not self.fingerprint or fingerprint == self.fingerprint
        )


def record_intent(
    service: Service,
    op: IntentOp,
    timeout: float,
    target: ServiceConfig | None = None,
    target_fingerprint: str = "",
) -> Intent:
    """Write the change into ``service``'s record before it is made (step 1)."""
    intent = Intent(
        op=op,
        target=None if target is None else target.model_dump(),
        target_fingerprint=target_fingerprint,
        previous=service.config.model_dump(),
        previous_fingerprint=service.recorded_fingerprint(),
        deadline=time.time() + timeout,
    )
    service.intent = intent
    service.persist()
    return intent


def confirm_intent(service: Service) -> None:
    """The change is done, or cleanly refused with the old state restored (step 3)."""
    if service.intent is not None:
        service.intent = None
        service.persist()


def intent_in_progress(intent: Intent) -> bool:
    """Whether the actor of ``intent`` may still be at work on it."""
    if intent.abandoned or time.time() > intent.deadline + GRACE_S:
        return False
    return process.process_start_time(intent.actor_pid) == intent.actor_start


def reconcile(
    service: Service, *, actor_done: bool = False, error: str | None = None
) -> str | None:
    """Bring ``service``'s record in line with what its server serves; returns what was
    done (one line) or None. ``actor_done``: the caller is the actor and has stopped
    acting (its own failure path, whose message is ``error``), so the intent is resolved
    now, not left in progress; a rollback then keeps ``error`` as ``last_error``."""
    from shipyard.services.state import ServiceState

    intent = service.intent
    if intent is not None and not actor_done and intent_in_progress(intent):
        return None
    if not type(service).REPORTS_SERVED_MODEL:
        # The flavor cannot say what its server serves: its own act (and rollback) is
        # the truth, and its own status check shows the rest. No drift to correct.
        if intent is None:
            return None
        service.intent = None
        note = error or f"the {intent.describe()} was interrupted; its status shows the rest"
        service.status.update(service.status.state, note)
        service.persist()
        return note
    served = service.served_model()
    if served is not None and served.changing:
        return None  # the server is still switching: the next check decides
    if intent is None:
        return _correct_drift(service, served)
    if intent.op in ("stop", "delete"):
        return None  # finished by the deployer (``ModelDeployer.observe``): it was asked for
    if intent.op == "start":
        # Its desired state (admin_state) was saved first; the status check shows what
        # runs (``error`` with the cause, if it does not). Nothing else to reconcile.
        service.intent = None
        service.persist()
        return None
    target = intent.target or {}
    previous = intent.previous
    outcome: str
    if served is None:
        # Nothing serves: keep the config the record had before, unless there was none.
        if intent.op == "update" and previous is not None:
            service.apply_config(previous, intent.previous_fingerprint)
        else:
            service.apply_config(target, intent.target_fingerprint)
        outcome = f"the {intent.describe()} was interrupted and nothing is being served"
    elif served.matches(str(target.get("model_uri", "")), intent.target_fingerprint):
        service.apply_config(target, served.fingerprint or intent.target_fingerprint)
        service.intent = None
        service.persist()
        return f"finished the interrupted {intent.describe()}"
    elif previous is not None and served.matches(
        str(previous.get("model_uri", "")), intent.previous_fingerprint
    ):
        service.apply_config(previous, served.fingerprint or intent.previous_fingerprint)
        outcome = error or (
            f"the {intent.describe()} was interrupted before it took effect and was rolled "
            f"back; {served.model_uri} keeps serving. Deploy again to retry"
        )
    else:
        service.apply_config({**target, "model_uri": served.model_uri}, served.fingerprint)
        outcome = (
            f"the {intent.describe()} was interrupted; the server serves "
            f"{served.model_uri}, and the registry now says so. Deploy again to retry"
        )
    service.intent = None
    service.status.update(service.status.state, outcome)
    service.persist()
    if served is None and service.admin_state == ServiceState.ACTIVE:
        service.status.update(ServiceState.ERROR)
        service.persist()
    return outcome


def _correct_drift(service: Service, served: ServedModel | None) -> str | None:
    """No change recorded, yet the server serves something else: the record follows."""
    if served is None or served.matches(service.config.model_uri, service.recorded_fingerprint()):
        return None
    said = service.config.model_uri
    config = {**service.config.model_dump(), "model_uri": served.model_uri}
    service.apply_config(config, served.fingerprint)
    outcome = (
        f"the registry said {said} but the server serves "
        f"{served.model_uri}; the registry now says so"
    )
    service.status.update(service.status.state, outcome)
    service.persist()
    return outcome
