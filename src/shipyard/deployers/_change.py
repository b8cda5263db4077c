"""Desired state first, then reconcile: the protocol every change of a model server
follows (the intent itself, and its reconciliation, are ``services.intent``).

``change`` records the target as the service's intent before the flavor acts and
confirms it after; ``observe`` asks the server what it really serves and finishes or
rolls back an intent whose caller is gone. A flavor implements ``served_model()``; the
mechanism is written here once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shipyard.errors import ShipyardError
from shipyard.services.intent import (
    Intent,
    IntentOp,
    confirm_intent,
    intent_in_progress,
    record_intent,
)
from shipyard.services.service import Service, ServiceConfig

__all__ = ["change", "interrupted_removal", "observe"]


def observe(service: Service) -> Service:
    """Check ``service``'s status and reconcile its record with what its server serves
    (finishing or rolling back an interrupted change); what was done is in
    ``status.last_error``."""
    # Observing must work when nothing can be written (a read-only or full store).
    with service.records_optional():
        service.check_status()
        service.reconcile()
    return service


@contextlib.contextmanager
def change(
    service: Service,
    op: IntentOp,
    timeout: float,
    target: ServiceConfig | None = None,
    target_fingerprint: str = "",
) -> Iterator[None]:
    """Record ``op`` on ``service`` as desired state, run the body (the act), then
    confirm. A flavor's failure (a ShipyardError) is reconciled at once against what the
    server serves; any other interruption (Ctrl-C, a bug) leaves the intent marked
    abandoned, and a killed caller leaves it as it was: the next status check reconciles
    either."""
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


def interrupted_removal(service: Service) -> Intent | None:
    """The stop or delete recorded on ``service`` whose caller is gone: it was asked for,
    so whoever finds the service finishes it (twice is harmless)."""
    intent = service.intent
    if intent is None or intent.op not in ("stop", "delete") or intent_in_progress(intent):
        return None
    return intent
