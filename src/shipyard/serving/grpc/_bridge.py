"""Hand coroutines from the gRPC thread's event loop to the data plane's loop, in bursts.

``asyncio.run_coroutine_threadsafe`` per call would wake the data plane's loop once per
request, so requests reach the adaptive batcher one at a time and every one pays for
its own predict call. Instead every call accepted in one turn of the gRPC loop crosses
over in a single hand-off, and the data plane's loop starts them all in the same turn,
as it does for HTTP requests read from several sockets at once; results travel back the
same way. Fewer cross-thread wake-ups, and requests that arrive together can share a
predict call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["PlaneBridge"]

T = TypeVar("T")
_Work = Callable[[], Coroutine[Any, Any, Any]]


class PlaneBridge:
    """Runs work on ``plane_loop`` for callers on ``local_loop``, batching the hand-offs."""

    def __init__(
        self, local_loop: asyncio.AbstractEventLoop, plane_loop: asyncio.AbstractEventLoop
    ) -> None:
        self._local = local_loop
        self._plane = plane_loop
        self._outbox: list[tuple[_Work, asyncio.Future[Any]]] = []
        self._replies: list[tuple[asyncio.Task[Any], asyncio.Future[Any]]] = []

    async def run(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Await ``work()`` run as a task on the plane loop (call from the local loop)."""
        if self._plane is self._local:
            return await work()
        future: asyncio.Future[T] = self._local.create_future()
        if not self._outbox:
            # Runs after the callbacks already queued for this turn: everything accepted
            # in this turn goes over together.
            self._local.call_soon(self._send)
        self._outbox.append((work, future))
        return await future

    # -- local loop ------------------------------------------------------------------

    def _send(self) -> None:
        batch, self._outbox = self._outbox, []
        try:
            self._plane.call_soon_threadsafe(self._start, batch)
        except RuntimeError as err:  # the data plane's loop is closed: the worker is exiting
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)

    def _deliver(self, batch: list[tuple[asyncio.Task[Any], asyncio.Future[Any]]]) -> None:
        for task, future in batch:
            if future.done():  # the call was cancelled meanwhile
                continue
            if task.cancelled():
                future.cancel()
            elif (error := task.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(task.result())

    # -- plane loop ------------------------------------------------------------------

    def _start(self, batch: list[tuple[_Work, asyncio.Future[Any]]]) -> None:
        for work, future in batch:
            if future.cancelled():  # the client gave up before its call got here
                continue
            task = self._plane.create_task(work())
            task.add_done_callback(functools.partial(self._reply, future=future))

    def _reply(self, task: asyncio.Task[Any], *, future: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            # Retrieve it here, on the task's loop: if the call was cancelled meanwhile
            # nobody else will, and asyncio would log "exception was never retrieved".
            task.exception()
        if not self._replies:
            self._plane.call_soon(self._send_replies)
        self._replies.append((task, future))

    def _send_replies(self) -> None:
        batch, self._replies = self._replies, []
        # The gRPC loop is gone once the server has stopped: nobody waits for these.
        with contextlib.suppress(RuntimeError):
            self._local.call_soon_threadsafe(self._deliver, batch)
