"""Request deadlines without a loop timer per request.

Every request of a model gets the model's ``request_timeout``. ``asyncio.timeout`` would
set a timer for each request and cancel it when the answer comes (a few microseconds a
request, on a path whose whole cost is a few hundred). But deadlines of one length end
in the order they start, so one timer for the earliest deadline still running does for
all of them: when it fires, the requests already answered leave the queue, the expired
ones are cancelled, and the timer moves to the next one still running. A client's own,
shorter deadline (gRPC's ``grpc-timeout``) does not keep that order and gets a timer of
its own.

An expired request is cancelled as ``asyncio.timeout`` does it (``Task.cancel``, then
``uncancel`` when the cancellation is caught): a request still queued for its batch
leaves the queue unpredicted; one inside a running predict is not torn out of its batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["Deadline", "Deadlines"]

#: How early a loop timer may fire (uvloop counts milliseconds).
_TICK = 0.001
#: Queue length that makes ``start`` drop the answered deadlines behind a running head.
_COMPACT_MIN = 1024

_RUNNING, _EXPIRED, _OVER = range(3)


class Deadline:
    """One request's deadline: its task is cancelled at loop time ``at``."""

    __slots__ = ("at", "cancelling", "state", "task", "timer")

    def __init__(self, at: float, task: asyncio.Task[Any]) -> None:
        self.at = at
        self.task: asyncio.Task[Any] | None = task  # None once over
        #: The task's cancellation count at the start: a cancellation beyond the one this
        #: deadline makes came from elsewhere (the client went away) and must go on.
        self.cancelling = task.cancelling()
        self.state = _RUNNING
        self.timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self.state == _RUNNING

    def expire(self) -> None:
        """Time is up: cancel the request's task."""
        if self.state == _RUNNING and self.task is not None:
            self.state = _EXPIRED
            self.task.cancel()

    def caused(self) -> bool:
        """Whether the ``CancelledError`` being handled is this deadline's alone; its
        cancellation is taken back either way (as ``asyncio.timeout`` does)."""
        if self.state != _EXPIRED or self.task is None:
            return False
        self.state = _OVER
        return self.task.uncancel() <= self.cancelling


class Deadlines:
    """The running deadlines of one model's requests, ``seconds`` long each."""

    __slots__ = ("_compact_at", "_queue", "_timer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: Deadlines in the order they end (and start); answered ones wait at the head
        #: only until the next start or the timer clears them.
        self._queue: deque[Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._compact_at = _COMPACT_MIN

    def start(self, seconds: float) -> Deadline:
        """A deadline for the current task, ``seconds`` from now (at most the model's)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a request deadline needs the request's task to cancel")
        if seconds < self.seconds:
            own = Deadline(loop.time() + seconds, task)
            own.timer = loop.call_at(own.at, own.expire)
            return own
        deadline = Deadline(loop.time() + self.seconds, task)
        queue = self._queue
        while queue and not queue[0].running:
            queue.popleft()
        if len(queue) >= self._compact_at:
            # A long-running request at the head holds every later, answered one in the
            # queue: keep only those still running.
            queue = self._queue = deque(d for d in queue if d.running)
            self._compact_at = max(_COMPACT_MIN, 2 * len(queue))
        queue.append(deadline)
        if self._timer is None:
            self._timer = loop.call_at(deadline.at, self._fire)
        return deadline

    @staticmethod
    def end(deadline: Deadline) -> None:
        """The request is answered (or failed): its deadline no longer applies. A
        cancellation it made that was not handled as one is taken back here."""
        if deadline.state == _EXPIRED and deadline.task is not None:
            deadline.task.uncancel()
        deadline.state = _OVER
        deadline.task = None
        if deadline.timer is not None:
            deadline.timer.cancel()
            deadline.timer = None

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + _TICK
        queue = self._queue
        while queue:
            head = queue[0]
            if head.running and head.at > now:
                self._timer = loop.call_at(head.at, self._fire)
                return
            queue.popleft()
            head.expire()
