"""When the supervisor starts a worker that died again, and when it stops trying.

A worker that lived more than 10 s is restarted at once; one that died sooner waits a
backoff that doubles (from 0.1 s, at most 5 s). After 5 failed starts in a row the
supervisor gives up: restarting again would only fail again (the model cannot be loaded
any more, say), so it says so everywhere instead of looping forever.
"""

from __future__ import annotations

__all__ = ["MAX_FAILED_STARTS", "RestartPolicy"]

_RESTART_BACKOFF_MAX = 5.0
#: Consecutive failed starts of a worker after which the supervisor stops restarting it.
MAX_FAILED_STARTS = 5
#: A worker that lived this long (seconds) did not crash on start: no backoff.
_HEALTHY_LIFETIME = 10


class RestartPolicy:
    """The restart state of one worker slot."""

    __slots__ = ("backoff", "failed_starts")

    def __init__(self) -> None:
        self.backoff = 0.1
        self.failed_starts = 0

    def delay(self, lived: float) -> float:
        """Seconds to wait before starting again a worker that died after ``lived`` s."""
        if lived > _HEALTHY_LIFETIME:
            self.backoff = 0.1
        else:
            self.backoff = min(self.backoff * 2, _RESTART_BACKOFF_MAX)
        return self.backoff if lived < _HEALTHY_LIFETIME else 0

    @property
    def exhausted(self) -> bool:
        return self.failed_starts >= MAX_FAILED_STARTS

    def started(self, ready: bool) -> None:
        """A restart ended: the worker became ready, or failed to."""
        self.failed_starts = 0 if ready else self.failed_starts + 1
