"""The lifecycle states of a service."""

from __future__ import annotations

import enum

__all__ = ["ServiceState"]


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


_ICONS = {
    ServiceState.INACTIVE: "⏸",
    ServiceState.PENDING_STARTUP: "⏳",
    ServiceState.ACTIVE: "✅",
    ServiceState.PENDING_SHUTDOWN: "⏳",
    ServiceState.ERROR: "❌",
}
