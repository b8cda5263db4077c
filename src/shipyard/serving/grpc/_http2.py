"""The server side of one HTTP/2 connection, as much of RFC 9113 as unary gRPC needs.

Why our own and not grpcio's server: grpcio's Python layer costs 0.35-0.5 ms of CPU per
call before any of our code runs, three times what a whole REST request costs us, and it
needs its own thread and loop. This connection is an ``asyncio.Protocol`` on the data
plane's own loop, like the HTTP server's, so gRPC calls read in one loop turn reach the
adaptive batcher together, with no thread hop.

Why not the ``h2`` library's sans-IO state machine under the same protocol: per unary
call it costs an order of magnitude more. ``benchmarks/harness/framing.py`` feeds the
same recorded client bytes (HEADERS + DATA, 100-byte message) call by call into both on
one uvloop loop, no sockets, no data plane: on this two-core machine, shared and loaded
(load average 18-25, 2026-12-02), ours took a median 113 µs and ``h2`` 4,318 µs per call
(38x, each round between 27x and 48x); a review measurement on a quiet machine had about
21 µs against 270-400 µs. ``h2`` validates and re-encodes every header through ``hpack``
(with a debug log call per field) and walks its per-stream state machine for each frame;
here a response header block is encoded once and a frame is a struct unpack.

What it does: h2c with prior knowledge (what gRPC clients send on an insecure channel),
SETTINGS, PING, GOAWAY, RST_STREAM, CONTINUATION, padding, and flow control both ways:
it grants the peer large windows up front and tops them up as data arrives, and it
holds back response data the peer has no window for until WINDOW_UPDATE opens it.

Where each part lives: this module is the connection around the streams (the prefaces,
reading frames off the socket, the preface and idle timeouts, answering, GOAWAY and the
ways a connection ends); ``_streams`` what each frame does to the streams; ``_frames``
the wire format; ``_flow`` the windows both ways; ``_floods`` the flood limits;
``_header_block`` HPACK.

Subclasses get whole requests through ``request_received`` and answer with
``send_response`` or ``send_headers_only``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from shipyard.serving._budget import BufferBudget

from shipyard.serving.grpc._flow import RECEIVE_WINDOW
from shipyard.serving.grpc._frames import (
    DEFAULT_WINDOW,
    FRAME_HEADER,
    FRAME_SIZE_ERROR,
    MAX_WINDOW,
    NO_ERROR,
    PREFACE,
    REFUSED_STREAM,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    ProtocolViolation,
    goaway_frame,
    settings_frame,
    window_update_frame,
)
from shipyard.serving.grpc._header_block import encode_header_block
from shipyard.serving.grpc._streams import (
    MAX_CONCURRENT_STREAMS,
    MAX_HEADER_LIST_BYTES,
    Http2Streams,
)

__all__ = ["MAX_CONCURRENT_STREAMS", "Http2Connection", "Http2Limits", "encode_header_block"]

MAX_RECEIVE_FRAME = 2**20
#: How long a connection told GOAWAY with no call in flight stays open for the peer to
#: read it and hang up first.
GOAWAY_LINGER_S = 1.0


@dataclass(frozen=True, slots=True)
class Http2Limits:
    """Timeouts (seconds) of one connection: for the client's preface, and with no call
    in flight."""

    preface_timeout: float = 10.0
    idle_timeout: float = 30.0


class Http2Connection(Http2Streams, asyncio.Protocol):
    """One client connection. Override ``request_received`` and ``stream_cancelled``."""

    def __init__(
        self,
        max_body_bytes: int,
        limits: Http2Limits | None = None,
        budget: BufferBudget | None = None,
    ) -> None:
        super().__init__(max_body_bytes, budget)
        self.limits = limits or Http2Limits()
        self._timer: asyncio.TimerHandle | None = None
        self._buffer = bytearray()
        self._preface_seen = False
        self._server_preface = b""
        self._linger: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they are one.
        self.transport = transport = cast(asyncio.Transport, transport)
        settings = settings_frame(
            [
                (SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS),
                (SETTINGS_INITIAL_WINDOW_SIZE, RECEIVE_WINDOW),
                (SETTINGS_MAX_FRAME_SIZE, MAX_RECEIVE_FRAME),
                (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES),
            ]
        )
        # Written once the client's preface arrives: an HTTP/1 client must read our 400
        # as the first bytes, not after binary frames (curl: "Received HTTP/0.9").
        window = window_update_frame(0, self._recv.size - DEFAULT_WINDOW)
        self._server_preface = settings + window
        self._timer = self._loop.call_later(self.limits.preface_timeout, self._tick)

    def _tick(self) -> None:
        """The preface and idle timeouts, on one timer re-armed lazily: a call in flight
        only stores the time it ended, no timer is touched per call."""
        self._timer = None
        transport = self.transport
        if transport is None:
            return
        if not self._preface_seen:
            transport.close()
            return
        idle = self.limits.idle_timeout
        left = self._last_active + idle - self._loop.time()
        if self._streams or self._busy():
            left = idle
        if left <= 0:
            self.go_away()
            return
        self._timer = self._loop.call_later(left, self._tick)

    def _busy(self) -> bool:
        """Work in flight that has no stream left (subclasses: calls still running)."""
        return False

    # -- back-pressure ---------------------------------------------------------------

    def pause_writing(self) -> None:
        # The peer does not read what we send: stop reading what it sends, so answers
        # to its frames (PING ACKs, say) cannot pile up here.
        self._write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._floods.peer_reads()
        if self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for timer in (self._timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._timer = self._linger = None
        for stream_id, stream in list(self._streams.items()):
            self._give_back(stream)
            self.stream_cancelled(stream_id)
        self._streams.clear()
        self._send.blocked.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return  # hung up (``_fail``): dropped
        buffer = self._buffer
        buffer += data
        try:
            if not self._preface_seen:
                if len(buffer) < len(PREFACE):
                    if not PREFACE.startswith(bytes(buffer)):
                        self._not_http2()
                    return
                if not buffer.startswith(PREFACE):
                    self._not_http2()
                    return
                del buffer[: len(PREFACE)]
                self._preface_seen = True
                if self.transport is not None:
                    self.transport.write(self._server_preface)
                if self._going_away:
                    self._send_go_away()
            offset, end = 0, len(buffer)
            while end - offset >= 9:
                head, flags, stream_id = FRAME_HEADER.unpack_from(buffer, offset)
                length = head >> 8
                if length > MAX_RECEIVE_FRAME:
                    raise ProtocolViolation(FRAME_SIZE_ERROR, f"frame of {length} bytes")
                if end - offset - 9 < length:
                    break
                payload = bytes(buffer[offset + 9 : offset + 9 + length])
                offset += 9 + length
                self._on_frame(head & 0xFF, flags, stream_id & MAX_WINDOW, payload)
                if self.transport is None:
                    return
            del buffer[:offset]
        except ProtocolViolation as err:
            self._fail(err.code, str(err))

    # -- answering -------------------------------------------------------------------

    def send_response(
        self, stream_id: int, header_block: bytes, data: bytes, trailers: bytes
    ) -> None:
        """HEADERS, DATA as the windows allow, then ``trailers`` ending the stream."""
        stream = self._streams.get(stream_id)
        transport = self.transport
        if stream is None or transport is None:
            return  # reset by the peer meanwhile
        frames, done = self._send.response(stream, header_block, data, trailers)
        transport.write(frames)
        if done:
            self._finish(stream)

    def send_headers_only(self, stream_id: int, header_block: bytes) -> None:
        """One HEADERS frame that ends the stream (gRPC's trailers-only answer)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.transport is None:
            return
        self.transport.write(self._send.headers(stream_id, header_block, True))
        self._finish(stream)

    def refuse_stream(self, stream_id: int) -> None:
        """RST_STREAM REFUSED_STREAM: not processed at all, so the client may retry it."""
        stream = self._streams.get(stream_id)
        if stream is None or self.transport is None:
            return
        self._reset(stream_id, REFUSED_STREAM)
        self._finish(stream)

    def go_away(self) -> None:
        """Refuse new streams, finish those in flight, then close (graceful shutdown)."""
        if self._going_away or self.transport is None:
            return
        self._going_away = True
        if self._preface_seen:  # else our SETTINGS come first, then this (data_received)
            self._send_go_away()

    def _send_go_away(self) -> None:
        # Closing at once would make a client that is connecting, or sending its next
        # call, fail it ("Socket closed"); told GOAWAY, it retries elsewhere by itself.
        if self.transport is not None:
            self.transport.write(goaway_frame(self._last_stream, NO_ERROR))
        if not self._streams:
            self._close_soon()

    def _close_soon(self) -> None:
        """Close once the peer had time to read our GOAWAY and hang up itself (a close
        with its next frames unread resets the connection, our last frames with it)."""
        if self._linger is None and self.transport is not None:
            self._linger = self._loop.call_later(GOAWAY_LINGER_S, self._close_now)

    def _close_now(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, code: int, reason: str) -> None:
        transport = self.transport
        if transport is None:
            return
        debug = reason.encode("utf-8", "replace")[:512]
        transport.write(goaway_frame(self._last_stream, code, debug))
        self.transport = None
        self.connection_lost(None)
        self._buffer.clear()
        # Lingering close: our FIN goes after the GOAWAY, and what the peer still sends
        # is read and dropped for a moment (``data_received`` ignores it). Closing with
        # its data unread would send a RST, and the peer could lose the GOAWAY that says
        # why it was cut off.
        if transport.can_write_eof():
            transport.write_eof()
            self._loop.call_later(1.0, transport.close)
        else:
            transport.close()

    def _not_http2(self) -> None:
        """Plain HTTP/1 (or anything else) on the gRPC port: say so, then hang up."""
        transport = self.transport
        if transport is None:
            return
        message = b"This port speaks gRPC (HTTP/2 only); use the HTTP port for REST.\n"
        transport.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(message)
            + message
        )
        transport.close()
        self.transport = None
        self.connection_lost(None)
