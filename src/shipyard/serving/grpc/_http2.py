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
Header blocks are ``_header_block``'s business.

Subclasses get whole requests through ``request_received`` and answer with
``send_response`` or ``send_headers_only``. The module is longer than most on purpose:
it is one state machine (streams, windows, the frames that change them), and splitting
it would spread each rule of the RFC over several files.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from shipyard.serving._budget import BufferBudget

from shipyard.serving.grpc._header_block import (
    HeaderBlockError,
    HeaderDecoder,
    encode_header_block,
    hpack_int,
)

__all__ = ["Http2Connection", "encode_header_block"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 section 6).
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0, 1, 2, 3, 4
_PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 5, 6, 7, 8, 9
_END_STREAM = _ACK = 0x1
_END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x4, 0x8, 0x20

# Error codes (section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 5, 6, 7, 8, 9
ENHANCE_YOUR_CALM = 11

# Settings identifiers.
_HEADER_TABLE_SIZE, _MAX_CONCURRENT_STREAMS, _INITIAL_WINDOW_SIZE = 1, 3, 4
_MAX_FRAME_SIZE, _MAX_HEADER_LIST_SIZE = 5, 6

_MAX_WINDOW = 2**31 - 1
_DEFAULT_WINDOW = 65_535
_DEFAULT_FRAME = 16_384
_FRAME_HEADER = struct.Struct(">L B L")  # length (24 bits, packed with type), flags, stream

#: What we grant each stream: large, so a request body rarely waits for a window update.
RECEIVE_WINDOW = 16 * 2**20
#: The connection window is the most request data one connection may have buffered here:
#: it is credited back only when a whole request goes to the application (or data is
#: dropped), never merely because it arrived. At least one largest message must fit.
MIN_CONNECTION_WINDOW = 16 * 2**20
MAX_RECEIVE_FRAME = 2**20
MAX_CONCURRENT_STREAMS = 1000
MAX_HEADER_LIST_BYTES = 64 * 1024
#: How many of the streams we reset are remembered, to ignore what the peer sent on them
#: before our RST_STREAM arrived (their request trailers, say).
_RESET_MEMORY = 1024

# Floods (the limits Envoy, nginx and Go's x/net enforce, in our terms). Frames that make
# us work but carry no request -- SETTINGS, PING, RST_STREAM, PRIORITY -- spend tokens
# of a bucket that holds a burst and refills each second; an empty DATA or CONTINUATION
# frame that ends nothing is allowed only a few times in a row; and while the peer does
# not read our answers (the transport paused writing) we stop reading its frames, and
# hang up if it still makes us queue more control frames. Each of these ends the
# connection with GOAWAY ENHANCE_YOUR_CALM.
_CONTROL_BURST = 10_000
_CONTROL_PER_SECOND = 2_000
_SETTINGS_COST = 10  # a SETTINGS frame may touch every stream's window: it costs more
_MAX_EMPTY_FRAMES = 8
_MAX_QUEUED_CONTROL = 1_000
#: How long a connection told GOAWAY with no call in flight stays open for the peer to
#: read it and hang up first.
GOAWAY_LINGER_S = 1.0


class _ProtocolViolation(Exception):
    """A connection-level protocol error: answered with GOAWAY, then the socket closes."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _FRAME_HEADER.pack((len(payload) << 8) | kind, flags, stream_id) + payload


@dataclass(frozen=True, slots=True)
class Http2Limits:
    """Timeouts (seconds) of one connection: for the client's preface, and with no call
    in flight."""

    preface_timeout: float = 10.0
    idle_timeout: float = 30.0


@dataclass(slots=True, eq=False)
class _Stream:
    id: int
    headers: dict[str, str]
    # Our send window is the peer's initial window plus this credit (WINDOW_UPDATEs
    # less data sent): a SETTINGS change of the initial window is then O(1).
    send_credit: int = 0
    body: list[bytes] = field(default_factory=list)
    body_len: int = 0
    buffered: int = 0  # bytes of this stream's DATA counted against the connection window
    held: int = 0  # bytes of this stream's DATA taken from the worker's budget
    recv_window: int = RECEIVE_WINDOW
    recv_unacked: int = 0
    remote_closed: bool = False
    # Response data waiting for window, then the trailer block that ends the stream.
    pending: memoryview | None = None
    trailers: bytes | None = None
    discarding: bool = False  # answered early (body too big): later data is dropped


class Http2Connection(asyncio.Protocol):
    """One client connection. Override ``request_received`` and ``stream_cancelled``."""

    def __init__(
        self,
        max_body_bytes: int,
        limits: Http2Limits | None = None,
        budget: BufferBudget | None = None,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits or Http2Limits()
        #: The worker's cap on request bytes held across connections (``_budget``).
        self._budget = budget
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._connection_window = max(MIN_CONNECTION_WINDOW, max_body_bytes + 2 * 2**16)
        self._recv_window = self._connection_window
        self._released = 0  # bytes given back to the application, not yet credited
        self._tokens = float(_CONTROL_BURST)
        self._tokens_at = self._loop.time()
        self._empty_frames = 0
        self._write_paused = False
        self._queued_control = 0
        self._last_active = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._buffer = bytearray()
        self._preface_seen = False
        self._headers = HeaderDecoder(MAX_HEADER_LIST_BYTES)
        self._streams: dict[int, _Stream] = {}
        self._last_stream = 0
        self._send_window = _DEFAULT_WINDOW
        self._peer_initial_window = _DEFAULT_WINDOW
        self._peer_max_frame = _DEFAULT_FRAME
        self._blocked: dict[int, _Stream] = {}  # streams with data waiting for window
        self._continuation: tuple[int, int, bytearray] | None = None  # stream, flags, block
        self._table_size_update: int | None = None
        self._going_away = False
        self._reset_ids: dict[int, None] = {}  # streams we reset, oldest first
        self._server_preface = b""
        self._linger: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # -- hooks -----------------------------------------------------------------------

    def request_received(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        """A whole request arrived; answer it with ``send_response``/``send_headers_only``."""
        raise NotImplementedError

    def request_too_large(self, stream_id: int, headers: dict[str, str]) -> None:
        """The body passed ``max_body_bytes``; answer now, later data is dropped."""
        raise NotImplementedError

    def stream_cancelled(self, stream_id: int) -> None:
        """The peer reset the stream or the connection went away before an answer."""

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they are one.
        self.transport = transport = cast(asyncio.Transport, transport)
        settings = struct.pack(
            ">HLHLHLHL",
            _MAX_CONCURRENT_STREAMS,
            MAX_CONCURRENT_STREAMS,
            _INITIAL_WINDOW_SIZE,
            RECEIVE_WINDOW,
            _MAX_FRAME_SIZE,
            MAX_RECEIVE_FRAME,
            _MAX_HEADER_LIST_SIZE,
            MAX_HEADER_LIST_BYTES,
        )
        grow = struct.pack(">L", self._connection_window - _DEFAULT_WINDOW)
        # Written once the client's preface arrives: an HTTP/1 client must read our 400
        # as the first bytes, not after binary frames (curl: "Received HTTP/0.9").
        window = _frame(_WINDOW_UPDATE, 0, 0, grow)
        self._server_preface = _frame(_SETTINGS, 0, 0, settings) + window
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
        self._queued_control = 0
        if self.transport is not None:
            self.transport.resume_reading()

    def _control_reply(self, frame: bytes) -> None:
        if self.transport is None:
            return
        if self._write_paused:
            self._queued_control += 1
            if self._queued_control > _MAX_QUEUED_CONTROL:
                raise _ProtocolViolation(ENHANCE_YOUR_CALM, "control frames are not being read")
        self.transport.write(frame)

    def _spend(self, tokens: int) -> None:
        self._tokens -= tokens
        if self._tokens < 0:
            # Only a connection that used up its burst reads the clock.
            now = self._loop.time()
            refill = (now - self._tokens_at) * _CONTROL_PER_SECOND
            self._tokens = min(float(_CONTROL_BURST), self._tokens + refill)
            self._tokens_at = now
            if self._tokens < 0:
                raise _ProtocolViolation(ENHANCE_YOUR_CALM, "too many control frames")

    def _release(self, size: int) -> None:
        """``size`` bytes of request data are no longer held: the peer may send them again."""
        self._released += size
        if self._released >= min(self._connection_window // 4, 2**20):
            self._recv_window += self._released
            self._grant(0, self._released)
            self._released = 0

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
        self._blocked.clear()
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
                head, flags, stream_id = _FRAME_HEADER.unpack_from(buffer, offset)
                length = head >> 8
                if length > MAX_RECEIVE_FRAME:
                    raise _ProtocolViolation(FRAME_SIZE_ERROR, f"frame of {length} bytes")
                if end - offset - 9 < length:
                    break
                payload = bytes(buffer[offset + 9 : offset + 9 + length])
                offset += 9 + length
                self._on_frame(head & 0xFF, flags, stream_id & _MAX_WINDOW, payload)
                if self.transport is None:
                    return
            del buffer[:offset]
        except _ProtocolViolation as err:
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
        size = len(data)
        window = min(self._send_window, self._peer_initial_window + stream.send_credit)
        if size <= window and size <= self._peer_max_frame:
            # The usual small answer: one write, one system call.
            self._send_window -= size
            stream.send_credit -= size
            transport.write(
                self._headers_frames(stream_id, header_block, False)
                + _frame(_DATA, 0, stream_id, data)
                + self._headers_frames(stream_id, trailers, True)
            )
            self._finish(stream)
            return
        transport.write(self._headers_frames(stream_id, header_block, False))
        stream.pending = memoryview(data)
        stream.trailers = trailers
        self._flush(stream)

    def send_headers_only(self, stream_id: int, header_block: bytes) -> None:
        """One HEADERS frame that ends the stream (gRPC's trailers-only answer)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.transport is None:
            return
        self.transport.write(self._headers_frames(stream_id, header_block, True))
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
            goaway = struct.pack(">LL", self._last_stream, NO_ERROR)
            self.transport.write(_frame(_GOAWAY, 0, 0, goaway))
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

    # -- frames ----------------------------------------------------------------------

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is not None and kind != _CONTINUATION:
            raise _ProtocolViolation(PROTOCOL_ERROR, "expected CONTINUATION")
        if kind == _DATA:
            self._on_data(flags, stream_id, payload)
        elif kind == _HEADERS:
            self._on_headers(flags, stream_id, payload)
        elif kind == _WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif kind == _SETTINGS:
            self._on_settings(flags, stream_id, payload)
        elif kind == _PING:
            if stream_id != 0 or len(payload) != 8:
                raise _ProtocolViolation(PROTOCOL_ERROR, "malformed PING")
            if not flags & _ACK:
                self._spend(1)
                self._control_reply(_frame(_PING, _ACK, 0, payload))
        elif kind == _RST_STREAM:
            if stream_id == 0 or len(payload) != 4:
                raise _ProtocolViolation(PROTOCOL_ERROR, "malformed RST_STREAM")
            self._spend(1)
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                self._blocked.pop(stream_id, None)
                self._give_back(stream)
                if stream.buffered:
                    self._release(stream.buffered)
                self.stream_cancelled(stream_id)
        elif kind == _CONTINUATION:
            self._on_continuation(flags, stream_id, payload)
        elif kind == _GOAWAY:
            self._going_away = True
            if not self._streams and self.transport is not None:
                self.transport.close()
        elif kind == _PUSH_PROMISE:
            raise _ProtocolViolation(PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
        elif kind == _PRIORITY:
            if stream_id == 0:
                raise _ProtocolViolation(PROTOCOL_ERROR, "PRIORITY on stream 0")
            self._spend(1)
        # PRIORITY and unknown frame types are ignored, as the RFC asks.

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise _ProtocolViolation(PROTOCOL_ERROR, "HEADERS on stream 0")
        start, end = 0, len(payload)
        if flags & _PADDED:
            start, end = 1, end - payload[0]
        if flags & _PRIORITY_FLAG:
            start += 5
        if start > end:
            raise _ProtocolViolation(PROTOCOL_ERROR, "HEADERS padding longer than the frame")
        block = payload[start:end]
        if flags & _END_HEADERS:
            self._on_header_block(flags, stream_id, block)
        else:
            self._continuation = (stream_id, flags, bytearray(block))

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise _ProtocolViolation(PROTOCOL_ERROR, "unexpected CONTINUATION")
        _, first_flags, block = self._continuation
        if not payload and not flags & _END_HEADERS:
            self._empty_frame()
        else:
            self._empty_frames = 0
        block += payload
        if len(block) > MAX_HEADER_LIST_BYTES * 2:
            raise _ProtocolViolation(PROTOCOL_ERROR, "header block too large")
        if flags & _END_HEADERS:
            self._continuation = None
            self._on_header_block(first_flags, stream_id, bytes(block))

    def _empty_frame(self) -> None:
        self._empty_frames += 1
        if self._empty_frames > _MAX_EMPTY_FRAMES:
            raise _ProtocolViolation(ENHANCE_YOUR_CALM, "too many empty frames in a row")

    def _on_header_block(self, flags: int, stream_id: int, block: bytes) -> None:
        # Decoded even for streams we refuse: it may update the shared dynamic table.
        try:
            headers = self._headers.decode(block)
        except HeaderBlockError as err:
            raise _ProtocolViolation(COMPRESSION_ERROR, str(err)) from err
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers from the client end its side of the stream
            if stream.remote_closed:  # else the request would run a second time
                raise _ProtocolViolation(STREAM_CLOSED, f"HEADERS after END_STREAM on {stream_id}")
            if not flags & _END_STREAM:
                raise _ProtocolViolation(PROTOCOL_ERROR, "second HEADERS without END_STREAM")
            self._end_of_request(stream)
            return
        if stream_id in self._reset_ids:
            return  # sent before our RST_STREAM reached the peer: ignored (RFC 9113 5.1)
        if stream_id % 2 == 0 or stream_id <= self._last_stream:
            raise _ProtocolViolation(PROTOCOL_ERROR, f"stream {stream_id} cannot be opened")
        self._last_stream = stream_id
        if self._going_away:
            return
        if len(self._streams) >= MAX_CONCURRENT_STREAMS:
            self._reset(stream_id, REFUSED_STREAM)
            return
        stream = _Stream(stream_id, headers)
        self._streams[stream_id] = stream
        if flags & _END_STREAM:
            self._end_of_request(stream)

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        size = len(payload)
        self._recv_window -= size
        if self._recv_window < 0:
            raise _ProtocolViolation(FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        if size == 0 and not flags & _END_STREAM:
            self._empty_frame()
        else:
            self._empty_frames = 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            if stream_id == 0 or stream_id > self._last_stream:
                raise _ProtocolViolation(PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            if stream is None:
                self._release(size)
                return  # a stream we reset or answered early: its data is ignored
            raise _ProtocolViolation(STREAM_CLOSED, f"DATA after END_STREAM on {stream_id}")
        stream.recv_window -= size
        if stream.recv_window < 0:
            raise _ProtocolViolation(FLOW_CONTROL_ERROR, f"DATA beyond stream {stream_id}'s window")
        data = payload
        if flags & _PADDED:
            if size == 0 or payload[0] >= size:
                raise _ProtocolViolation(PROTOCOL_ERROR, "DATA padding longer than the frame")
            data = payload[1 : size - payload[0]]
        if stream.discarding:
            self._release(size)
        elif self._budget is not None and not self._budget.take(size):
            # The worker holds all the request data it may: refused, not processed.
            self._release(stream.buffered + size)
            self._blocked.pop(stream_id, None)
            self._reset(stream_id, REFUSED_STREAM)
            stream.body = []
            stream.remote_closed = True  # reset: _finish has nothing more to tell it
            self._finish(stream)
            return
        else:
            stream.held += size
            stream.body.append(data)
            stream.body_len += len(data)
            stream.buffered += size
            if stream.body_len > self.max_body_bytes:
                stream.discarding = True
                stream.body.clear()
                self._give_back(stream)
                self._release(stream.buffered)
                stream.buffered = 0
                self.request_too_large(stream_id, stream.headers)
                if stream_id not in self._streams:
                    return
        if flags & _END_STREAM:
            self._end_of_request(stream)
            return
        # The stream's own window is credited as its data arrives (its body is bounded
        # by the message size); the connection window bounds what all streams hold.
        stream.recv_unacked += size
        if stream.recv_unacked >= RECEIVE_WINDOW // 2:
            stream.recv_window += stream.recv_unacked
            self._grant(stream_id, stream.recv_unacked)
            stream.recv_unacked = 0

    def _end_of_request(self, stream: _Stream) -> None:
        stream.remote_closed = True
        self._last_active = self._loop.time()
        if stream.discarding:
            return
        body = stream.body[0] if len(stream.body) == 1 else b"".join(stream.body)
        stream.body = []
        # The application has the request now (its queue is bounded by the data plane).
        if stream.buffered:
            self._release(stream.buffered)
            stream.buffered = 0
        self.request_received(stream.id, stream.headers, body)

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0:
            raise _ProtocolViolation(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & _ACK:
            return
        self._spend(_SETTINGS_COST)
        if len(payload) % 6:
            raise _ProtocolViolation(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
        grew = False
        for key, value in struct.iter_unpack(">HL", payload):
            if key == _INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise _ProtocolViolation(FLOW_CONTROL_ERROR, "initial window too large")
                # O(1): every stream's window is this plus its own credit.
                grew = grew or value > self._peer_initial_window
                self._peer_initial_window = value
            elif key == _MAX_FRAME_SIZE:
                if not _DEFAULT_FRAME <= value <= 2**24 - 1:
                    raise _ProtocolViolation(PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                self._peer_max_frame = value
            elif key == _HEADER_TABLE_SIZE and value < 4096:
                # We never add to our table, but a smaller limit must still be announced.
                self._table_size_update = value
        self._control_reply(_frame(_SETTINGS, _ACK, 0))
        if grew:
            for stream in list(self._blocked.values()):
                self._flush(stream)

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ProtocolViolation(FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
        increment = int.from_bytes(payload, "big") & _MAX_WINDOW
        if stream_id == 0:
            if increment == 0:
                raise _ProtocolViolation(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > _MAX_WINDOW:
                raise _ProtocolViolation(FLOW_CONTROL_ERROR, "connection window overflow")
            for waiting in list(self._blocked.values()):
                self._flush(waiting)
                if self._send_window <= 0:
                    break
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return  # a stream we already finished: harmless
        if increment == 0:
            self._streams.pop(stream_id, None)
            self._give_back(stream)
            self._blocked.pop(stream_id, None)
            self._reset(stream_id, PROTOCOL_ERROR)
            self.stream_cancelled(stream_id)
            return
        stream.send_credit += increment
        if self._peer_initial_window + stream.send_credit > _MAX_WINDOW:
            raise _ProtocolViolation(FLOW_CONTROL_ERROR, f"stream {stream_id} window overflow")
        if stream.pending is not None:
            self._flush(stream)

    # -- sending ---------------------------------------------------------------------

    def _headers_frames(self, stream_id: int, block: bytes, end_stream: bool) -> bytes:
        if self._table_size_update is not None:
            update, self._table_size_update = self._table_size_update, None
            block = hpack_int(update, 5, 0x20) + block
        flags = _END_STREAM if end_stream else 0
        limit = self._peer_max_frame
        if len(block) <= limit:
            return _frame(_HEADERS, flags | _END_HEADERS, stream_id, block)
        parts = [block[i : i + limit] for i in range(0, len(block), limit)]
        frames = [_frame(_HEADERS, flags, stream_id, parts[0])]
        frames += [_frame(_CONTINUATION, 0, stream_id, p) for p in parts[1:-1]]
        frames.append(_frame(_CONTINUATION, _END_HEADERS, stream_id, parts[-1]))
        return b"".join(frames)

    def _flush(self, stream: _Stream) -> None:
        """Send what the windows allow of ``stream``'s waiting data, then its trailers."""
        transport, pending = self.transport, stream.pending
        if transport is None or pending is None:
            return
        frames = []
        while len(pending) and (window := self._stream_window(stream)) > 0:
            size = min(window, self._peer_max_frame, len(pending))
            frames.append(_frame(_DATA, 0, stream.id, bytes(pending[:size])))
            pending = pending[size:]
            self._send_window -= size
            stream.send_credit -= size
        if len(pending):
            stream.pending = pending
            self._blocked[stream.id] = stream
        else:
            stream.pending = None
            self._blocked.pop(stream.id, None)
            frames.append(self._headers_frames(stream.id, stream.trailers or b"", True))
        if frames:
            transport.write(b"".join(frames))
        if stream.pending is None:
            self._finish(stream)

    def _stream_window(self, stream: _Stream) -> int:
        return min(self._send_window, self._peer_initial_window + stream.send_credit)

    def _give_back(self, stream: _Stream) -> None:
        if stream.held and self._budget is not None:
            self._budget.give(stream.held)
            stream.held = 0

    def _finish(self, stream: _Stream) -> None:
        """Our side of ``stream`` has ended."""
        self._streams.pop(stream.id, None)
        self._give_back(stream)
        self._last_active = self._loop.time()
        if not stream.remote_closed and self.transport is not None:
            # Answered before the request ended (too large): tell the peer to stop sending.
            self._reset(stream.id, NO_ERROR)
        if self._going_away and not self._streams and self.transport is not None:
            self._close_soon()

    def _grant(self, stream_id: int, increment: int) -> None:
        if self.transport is not None:
            self.transport.write(_frame(_WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment)))

    def _reset(self, stream_id: int, code: int) -> None:
        # Remembered (the latest few) so frames the peer sent meanwhile are ignored.
        self._reset_ids[stream_id] = None
        if len(self._reset_ids) > _RESET_MEMORY:
            del self._reset_ids[next(iter(self._reset_ids))]
        if self.transport is not None:
            self.transport.write(_frame(_RST_STREAM, 0, stream_id, struct.pack(">L", code)))

    def _fail(self, code: int, reason: str) -> None:
        transport = self.transport
        if transport is None:
            return
        debug = reason.encode("utf-8", "replace")[:512]
        transport.write(_frame(_GOAWAY, 0, 0, struct.pack(">LL", self._last_stream, code) + debug))
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
