"""The lifecycle states of a service, and the one table of moves between them.

``TRANSITIONS[a]`` holds every state a service in state ``a`` may move to; staying in
the same state (a new ``last_error``, say) is always allowed. ``ServiceStatus.update``
checks every change against it and raises ``IllegalTransitionError`` otherwise, so a
flavor cannot put a service into a state its lifecycle cannot reach. A new flavor or a
new state extends this table, and only this table.

Observed states follow reality (a status check records what it sees, e.g. a server
started by another process is ``ACTIVE`` even if this copy last saw it ``INACTIVE``), so
most moves are allowed. ``ACTIVE -> PENDING_STARTUP`` is one of them: a cluster flavor
(KServe, Seldon, Ray Serve) observes a rolling update as not ready yet. The one move
that is not allowed is the one no real server makes:

* ``PENDING_SHUTDOWN -> PENDING_STARTUP``: a server finishes stopping before it starts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from shipyard.errors import IllegalTransitionError

__all__ = ["TRANSITIONS", "ServiceState", "check_transition"]


class ServiceState(enum.StrEnum):
    """Observed state of a service (its desired state is ``admin_state``)."""

    INACTIVE = "inactive"  # not running, and nobody expects it to
    PENDING_STARTUP = "pending_startup"  # started, not yet answering its health check
    ACTIVE = "active"  # running and answering its health check
    PENDING_SHUTDOWN = "pending_shutdown"  # asked to stop, still finishing requests
    ERROR = "error"  # should run but does not (crashed, killed, unhealthy); see last_error

    @property
    def icon(self) -> str:
        return _ICONS[self]


_S = ServiceState

#: From each state, the states a service may move to (besides staying where it is).
TRANSITIONS: Mapping[ServiceState, frozenset[ServiceState]] = {
    # Started (here, or by another process and observed here); or failed to start.
    _S.INACTIVE: frozenset({_S.PENDING_STARTUP, _S.ACTIVE, _S.ERROR, _S.PENDING_SHUTDOWN}),
    # Healthy, failed, stopped while starting, or found stopped.
    _S.PENDING_STARTUP: frozenset({_S.ACTIVE, _S.ERROR, _S.PENDING_SHUTDOWN, _S.INACTIVE}),
    # Stopping, crashed or unhealthy, found stopped (admin state inactive), or rolling
    # out a new version (a cluster's resource observed not ready yet).
    _S.ACTIVE: frozenset({_S.PENDING_STARTUP, _S.PENDING_SHUTDOWN, _S.ERROR, _S.INACTIVE}),
    # Stopped, failed to stop, or still answering (another copy's stop did not happen).
    _S.PENDING_SHUTDOWN: frozenset({_S.INACTIVE, _S.ERROR, _S.ACTIVE}),
    # Restarted, recovered, stopped, or found stopped.
    _S.ERROR: frozenset({_S.PENDING_STARTUP, _S.ACTIVE, _S.PENDING_SHUTDOWN, _S.INACTIVE}),
}


def check_transition(current: ServiceState, new: ServiceState, what: str = "service") -> None:
    """Raise ``IllegalTransitionError`` unless ``current -> new`` is in ``TRANSITIONS``."""
    if new == current or new in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
    raise IllegalTransitionError(
        f"The {what} cannot go from {current.value} to {new.value}; from {current.value} "
        f"it can go to: {allowed}. Check its status (`check_status()`) and stop it first "
        "if it is still running."
    )


_ICONS = {
    ServiceState.INACTIVE: "⏸",
    ServiceState.PENDING_STARTUP: "⏳",
    ServiceState.ACTIVE: "✅",
    ServiceState.PENDING_SHUTDOWN: "⏳",
    ServiceState.ERROR: "❌",
}
