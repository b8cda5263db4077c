"""uvicorn's httptools protocol with the limits a server facing slow or hostile clients
needs, which uvicorn does not have:

* a header-read timeout (from a request's first byte to the end of its headers) and a
  body-read timeout (from there to the end of its body): a client that trickles a
  request a byte at a time gets 408 and is disconnected;
* an idle timeout for connections with no request in progress, armed when a connection
  opens as well as after each answer (uvicorn arms its keep-alive timer only after an
  answer, and any byte, even a stray CRLF, disarms it);
* a cap on open connections per worker: one more gets 503 and is closed (without a
  reset, as below, within ``_LINGER_S``; past ``_REFUSED_LINGERING`` such connections
  at once, outright);
* cancellation: when a client disconnects before its answer, the task running its
  request is cancelled, so a request still queued for its model is dropped before it
  reaches ``predict`` (``serving.batching``);
* a graceful drain of idle keep-alive connections: uvicorn closes them the moment the
  worker stops, racing a client that is sending its next request on one right then (it
  gets "Server disconnected without sending a response"; a rolling replacement stops
  every old worker under a busy client). Here the next request is answered, with
  ``Connection: close``, and a connection that stays idle is closed after a short wait;
* idle connections are closed without a reset (the drain's and the idle timeout's): a
  request already in the socket's buffer when the timer fires is read and answered
  (closing a socket with unread bytes makes the kernel send RST, and the client gets
  "Connection reset by peer" for a request the server had received); otherwise the
  server half-closes (FIN) and reads until the client closes too, discarding what it
  sends, so what crosses the FIN ends in a clean end of stream, never a reset;
* so are connections answered before their request's body was read (413, 408):
  the client may still be uploading, and a reset would reach it instead of the
  answer. The server half-closes after the answer and drops what still comes, until
  the client closes, has sent nothing for ``_LINGER_S``, or ``body_timeout`` is up.

POST requests (the inference routes) take the direct path of ``http._direct`` when it is
given: the same limits apply to them, here, in one place.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from shipyard.serving.http._direct import Direct, DirectCycle

__all__ = ["HttpLimits", "protocol_class"]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Per-connection timeouts (seconds) and the per-worker connection cap."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 30.0
    max_connections: int = 1000


def _refusal(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(text) + text
    )


_BUSY = _refusal(
    b"503 Service Unavailable\r\nretry-after: 1",
    b'{"error":"This worker has as many connections open as it accepts; retry shortly."}',
)
_TOO_SLOW = _refusal(
    b"408 Request Timeout",
    b'{"error":"The request was not received in time; send it whole, without pauses."}',
)

# _CLOSING: half-closed by an idle timer, reading (and dropping) until the client closes.
_IDLE, _HEADERS, _BODY, _ANSWERING, _CLOSING = range(5)
#: How long an idle keep-alive connection may still bring a request once the worker
#: stops (it is answered with Connection: close); a client that sends nothing in this
#: time was not about to.
_DRAIN_IDLE_S = 1.0
#: How long a half-closed connection waits for the client to close its side (a client
#: sees the end of stream the next time it looks at its pool, or at once if waiting),
#: counted from the last byte it sent.
_LINGER_S = 1.0
#: Connections past the cap that may linger so at once (refused, see connection_made);
#: those past this are closed outright, so a flood cannot hold sockets open.
_REFUSED_LINGERING = 64


def _unread(transport: Any) -> int:
    """Bytes the kernel holds for ``transport`` that the loop has not read yet."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


def protocol_class(limits: HttpLimits, direct: Direct | None = None) -> type[HttpToolsProtocol]:
    """uvicorn's ``http`` protocol class with ``limits`` (pass it as ``Config(http=...)``);
    with ``direct``, POST requests are answered on the direct path (``http._direct``)."""
    # The direct path's module (and through it the app, the codecs, the data plane) is
    # imported only when it is used: the MLflow engine's workers take this protocol
    # without it. ``direct_cycles`` is empty then, and no cycle is an instance of it.
    direct_cycles: tuple[type[DirectCycle], ...] = ()
    if direct is not None:
        from shipyard.serving.http._direct import DirectCycle as cycle_class

        direct_cycles = (cycle_class,)

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _timer_at = 0.0  # when ``_timer`` fires
        _deadline: float | None = None  # when the current phase's time is up
        _phase = _IDLE
        _deaf = False  # drops what arrives: refused, or half-closed
        _draining = False
        _linger_until = 0.0  # when a half-closed connection closes, whatever comes

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            excess = len(self.connections) - limits.max_connections
            if excess > 0:
                transport.write(_BUSY)
                if excess <= _REFUSED_LINGERING:
                    # The client may have sent its request already: half-close and drop
                    # it, not close (a reset would reach it instead of the 503); within
                    # _LINGER_S in all, so a connection past the cap stays cheap.
                    self._half_close(transport, _LINGER_S)
                else:  # a flood of connections: no more sockets held for it
                    self._deaf = True
                    transport.close()
                return
            self._arm(limits.idle_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            cycle: RequestResponseCycle | None = self.cycle
            task = getattr(cycle, "shipyard_task", None) if cycle is not None else None
            super().connection_lost(exc)
            if cycle is not None and not cycle.response_complete:
                if task is not None:
                    task.cancel()
                if isinstance(cycle, direct_cycles):
                    cycle.release()  # its task may be cancelled before it ever ran
            for queued, _ in self.pipeline:
                queued.disconnected = True
                if isinstance(queued, direct_cycles):
                    queued.release()
            self.pipeline.clear()

        def data_received(self, data: bytes) -> None:
            if self._deaf:
                # After a refusal, or sent after our FIN: no answer. A client still
                # sending (the rest of a refused body) is waited for, within bounds.
                if self._phase == _CLOSING:
                    self._arm(min(_LINGER_S, self._linger_until - self.loop.time()))
                return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = _HEADERS
            self._arm(limits.header_timeout)

        def on_headers_complete(self) -> None:
            parser = self.parser
            if (
                direct is not None
                and parser.get_method() == b"POST"
                and not parser.should_upgrade()
            ):
                self._direct_cycle(direct)
            else:
                super().on_headers_complete()
            self._phase = _BODY
            self._arm(limits.body_timeout)
            if self._draining and self.cycle is not None:
                self.cycle.keep_alive = False  # answered, then closed

        def shutdown(self) -> None:
            self._draining = True
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False
            elif self._phase == _IDLE and not self.pipeline:
                self._arm(min(_DRAIN_IDLE_S, limits.idle_timeout))
            # A request being read: on_headers_complete marks it the last one.

        def _direct_cycle(self, direct: Direct) -> None:
            """What uvicorn's ``on_headers_complete`` does, with a ``DirectCycle``."""
            parser = self.parser
            version = parser.get_http_version()
            # The path as uvicorn decodes it (ASCII, percent-decoded once).
            url = httptools.parse_url(self.url)
            path = url.path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            cycle = direct_cycles[0](
                direct,
                "POST",
                path,
                url.query or b"",
                self.headers,
                transport=self.transport,
                flow=self.flow,
                default_headers=self.server_state.default_headers,
                keep_alive=version != "1.0" and parser.should_keep_alive(),
                expect_100_continue=self.expect_100_continue,
                on_response=self.on_response_complete,
                close=self._close_answered,
                client=self.client,
            )
            existing = self.cycle
            self.cycle = cycle  # type: ignore[assignment]
            if existing is None or existing.response_complete:
                self._start_asgi_task(cycle, None)  # type: ignore[arg-type]
            else:  # pipelined: it starts when the answer before it is sent
                self.flow.pause_reading()
                self.pipeline.appendleft((cycle, None))  # type: ignore[arg-type]

        def on_body(self, body: bytes) -> None:
            cycle = self.cycle
            if isinstance(cycle, direct_cycles):
                if not cycle.response_complete:
                    cycle.feed(body)
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = _ANSWERING
            self._disarm()

        def on_response_complete(self) -> None:
            # uvicorn's, less its keep-alive timer (a timer set and cancelled per request):
            # the idle timeout here is that timer.
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:  # the next request is already under way
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            elif self._phase == _ANSWERING:
                self._phase = _IDLE
                self._arm(limits.idle_timeout)

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            task = self.loop.create_task(cycle.run_asgi(app))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            cycle.shipyard_task = task  # type: ignore[attr-defined]

        def _arm(self, seconds: float) -> None:
            # One timer per connection, moved only when a deadline comes before it: a
            # request on a busy connection sets numbers, not timers (three per request
            # otherwise). A timer that fires before the deadline waits for the rest.
            deadline = self.loop.time() + seconds
            self._deadline = deadline
            if self._timer is None or deadline < self._timer_at:
                self._wait_until(deadline)

        def _disarm(self) -> None:
            self._deadline = None

        def _wait_until(self, when: float) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(when, self._expired)
            self._timer_at = when

        def _expired(self) -> None:
            self._timer = None
            deadline = self._deadline
            if deadline is None:
                return  # disarmed meanwhile; the next _arm starts a timer
            if self.loop.time() < deadline:
                self._wait_until(deadline)
                return
            self._deadline = None
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if self._phase == _IDLE:
                self._close_idle(transport)
                return
            if self._phase in (_HEADERS, _BODY) and (
                self.cycle is None or not self.cycle.response_started
            ):
                transport.write(_TOO_SLOW)
                if self._nothing_else_to_send():
                    self._half_close(transport)
                    return
            transport.close()

        def _nothing_else_to_send(self) -> bool:
            """Whether no earlier request of this connection is still being answered: it
            would write after a FIN (closed at once, its answer is dropped instead)."""
            if self._phase == _HEADERS:
                return self.cycle is None or self.cycle.response_complete
            return not self.pipeline  # _BODY: an earlier request queues this one

        def _close_answered(self) -> None:
            """End the connection after an answer (``Connection: close``): at once when
            the request was read whole, else without a reset (see ``_half_close``)."""
            if self._phase in (_HEADERS, _BODY):
                self._half_close(self.transport)
            else:
                self.transport.close()

        def _close_idle(self, transport: Any) -> None:
            """End an idle keep-alive connection (drain or idle timeout) without a reset."""
            if _unread(transport):
                # The client's next request came as the timer fired: the loop reads it
                # next and answers it (``Connection: close`` when draining). Looked at
                # again later in case those bytes are not a request.
                self._arm(min(_DRAIN_IDLE_S, limits.idle_timeout))
                return
            self._half_close(transport)

        def _half_close(self, transport: Any, at_most: float = limits.body_timeout) -> None:
            """FIN, then read until the client closes (its EOF closes the transport):
            bytes that arrive meanwhile are dropped, not left to make close() a RST. The
            connection closes anyway ``_LINGER_S`` after the last byte, or when
            ``at_most`` seconds have passed (a client that keeps sending)."""
            if not transport.can_write_eof():
                transport.close()
                return
            self._phase = _CLOSING
            self._deaf = True
            self._linger_until = self.loop.time() + at_most
            transport.write_eof()
            self.flow.resume_reading()  # paused for a pipelined request, perhaps
            self._arm(_LINGER_S)

    return LimitedHttpToolsProtocol
