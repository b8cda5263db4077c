"""The direct path: POST requests (every inference route) answered without the ASGI cycle.

For each request uvicorn builds an ASGI scope, a cycle with an ``asyncio.Event``, a
receive message per body read and a send message per part of the answer, checks every
answer header against two regular expressions and writes the header block and the body
with two ``send`` calls (two trips through the loopback TCP stack, two wake-ups of the
client). For a model server's inference requests that is a large share of the work, so
the protocol (``http.protocol``) gives a POST request a ``DirectCycle`` instead: it calls
``HttpApp.serve`` with the body it was fed and writes the answer in one ``send``.

Only the way bytes come in and go out differs. Routing, the codecs, the data plane, the
error mapping and the metrics are ``HttpApp.serve``'s; the body limits ``_body``'s; the
token check ``BearerAuth.admits``; the access-log line ``_access.log_request``. A
``DirectCycle`` has the attributes of uvicorn's ``RequestResponseCycle`` that the protocol
reads and sets, so keep-alive, pipelining, ``Expect: 100-continue``, the timeouts, the
drain and cancellation on disconnect stay the protocol's one implementation.

``SHIPYARD_FAST_HTTP=off`` sends every request through the ASGI app instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from shipyard._switches import switched_off
from shipyard.errors import BadRequestError
from shipyard.serving.auth import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS, BearerAuth
from shipyard.serving.http._access import log_request
from shipyard.serving.http._body import RequestBody
from shipyard.serving.http.app import HttpApp, _Request

__all__ = ["ENV_SWITCH", "Direct", "DirectCycle", "enabled"]

log = logging.getLogger("shipyard.serving")

#: ``SHIPYARD_FAST_HTTP=off``: every request through the ASGI app (the path before it).
ENV_SWITCH = "SHIPYARD_FAST_HTTP"

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Headers = list[tuple[bytes, bytes]]


def enabled() -> bool:
    """Whether the environment leaves the direct path on (the default)."""
    return not switched_off(ENV_SWITCH)


@dataclass(frozen=True, slots=True)
class Direct:
    """What a direct request needs besides the protocol: the app, and the two wrappers
    the ASGI app gets (``AuthApp``, ``AccessLog``) as a check and a log call."""

    app: HttpApp
    auth: BearerAuth | None = None
    access_log: bool = False


class _Signal:
    """``asyncio.Event``'s ``set``/``clear``/``wait`` for one waiter, without its cost
    (one per request; the protocol sets it when body bytes or a disconnect arrive)."""

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        if self._flag:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


def _nothing() -> None:
    pass


async def _body_gone() -> bytes:
    raise BadRequestError("The request was answered; its body is no longer available.")


class DirectCycle:
    """One POST request on the direct path, in the protocol's place for a
    ``RequestResponseCycle`` (the attributes up to ``on_response`` are the ones the
    protocol uses)."""

    __slots__ = (
        "_client",
        "_close",
        "_default_headers",
        "_direct",
        "_flow",
        "_headers",
        "_started",
        "_transport",
        "disconnected",
        "keep_alive",
        "message_event",
        "more_body",
        "on_response",
        "request",
        "response_complete",
        "response_started",
        "shipyard_task",
        "waiting_for_100_continue",
    )

    def __init__(
        self,
        direct: Direct,
        method: str,
        path: str,
        query: bytes,
        headers: Headers,
        *,
        transport: asyncio.Transport,
        flow: FlowControl,
        default_headers: Headers,
        keep_alive: bool,
        expect_100_continue: bool,
        on_response: Any,
        close: Callable[[], None],
        client: tuple[str, int] | None,
    ) -> None:
        self._direct = direct
        self._transport = transport
        self._flow = flow
        self._default_headers = default_headers
        self._headers = headers
        self._client = client
        #: Ends the connection after an answer with ``Connection: close`` (the
        #: protocol's: it avoids a reset when the body was not read whole).
        self._close = close
        self._started = time.perf_counter()
        self.request: _Request = direct.app.request(method, path, query, dict(headers), self._read)
        self.more_body = True
        self.message_event = _Signal()
        self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.response_started = False
        self.response_complete = False
        self.on_response: Any = on_response
        self.shipyard_task: asyncio.Task[None] | None = None

    def feed(self, chunk: bytes) -> None:
        """Body bytes from the parser (taken from the budget as they arrive)."""
        body = self.request.body
        body.add(chunk)
        if body.error is not None:
            self.message_event.set()  # the reader raises it now, not at the body's end

    def release(self) -> None:
        """Give the body's bytes back (the connection is gone; idempotent)."""
        self.request.body.release()

    async def _read(self, body: RequestBody) -> bytes:
        if self.waiting_for_100_continue and not self._transport.is_closing():
            # As uvicorn does: the client is told to send its body when the app reads it,
            # so a request refused before that (413, 401) never sends it.
            self._transport.write(_CONTINUE)
            self.waiting_for_100_continue = False
        while self.more_body and body.error is None:
            if self.disconnected:
                raise BadRequestError("The client went away before sending the whole body.")
            self._flow.resume_reading()
            self.message_event.clear()
            await self.message_event.wait()
        return body.value()

    async def run_asgi(self, app: Any) -> None:
        """Answer the request. Named as uvicorn's cycle method, so the protocol starts and
        pipelines both kinds of cycle alike; ``app`` is not used."""
        direct, request = self._direct, self.request
        status = 0
        try:
            if direct.auth is not None and not direct.auth.admits(request.path, self._headers):
                status = 401
                self._write(401, UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY)
                return
            response = await direct.app.serve(request)
            if response is None:
                return
            if self._flow.write_paused and not self.disconnected:
                await self._flow.drain()
            status = response.status
            self._write(status, response.headers, response.body)
        except asyncio.CancelledError:
            pass  # the client went away (see ``http.protocol``)
        except Exception:  # a bug here: log it; the client must not wait for an answer
            log.exception("the direct HTTP path failed on %s %s", request.method, request.path)
            status = 0
            self._transport.close()
        finally:
            request.body.release()
            # This cycle and its request refer to each other (the request's reader is
            # this cycle's ``_read``; the protocol's callback, its task): cut the links,
            # so both are freed at once instead of by the cyclic garbage collector, whose
            # full passes paused a busy worker for ~100 ms.
            request.read = _body_gone
            self.on_response = _nothing
            self.shipyard_task = None
            if direct.access_log:
                log_request(self._client, request.method, request.path, status, self._started)

    def _write(self, status: int, headers: Headers, body: bytes) -> None:
        """The answer in one ``send``: uvicorn's header block (its default headers first,
        ``connection: close`` when the connection ends) followed by the body."""
        if self.disconnected:
            return
        parts = [STATUS_LINE[status]]
        for name, value in self._default_headers:
            parts += (name, b": ", value, b"\r\n")
        closes = False
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
            if name == b"connection" and value == b"close":
                closes = True
        if closes:
            self.keep_alive = False
        elif not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self.response_started = True
        self.waiting_for_100_continue = False
        self._transport.write(b"".join(parts))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self._close()
        self.on_response()
