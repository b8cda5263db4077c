"""The streams of one HTTP/2 connection and what each frame from the peer does to them
(RFC 9113 sections 5 and 6): opening and ending streams, request bodies, the windows the
frames move, and the limits on what the peer may make us hold or do.

``Http2Streams`` holds that state; ``_http2.Http2Connection`` adds the transport around
it (the prefaces, reading frames off the socket, timeouts, answering and closing). Its
subclass gets whole requests through ``request_received``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.serving._budget import BufferBudget

from shipyard.serving.grpc._floods import SETTINGS_COST, FloodGuard
from shipyard.serving.grpc._flow import MIN_CONNECTION_WINDOW, ReceiveWindow, SendWindows, Stream
from shipyard.serving.grpc._frames import (
    ACK,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    NO_ERROR,
    PING,
    PRIORITY,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    ProtocolViolation,
    data_of,
    frame,
    header_block_of,
    rst_stream_frame,
    settings_of,
    window_increment_of,
    window_update_frame,
)
from shipyard.serving.grpc._header_block import HeaderBlockError, HeaderDecoder

__all__ = ["MAX_CONCURRENT_STREAMS", "MAX_HEADER_LIST_BYTES", "Http2Streams"]

MAX_CONCURRENT_STREAMS = 1000
MAX_HEADER_LIST_BYTES = 64 * 1024
#: How many of the streams we reset are remembered, to ignore what the peer sent on them
#: before our RST_STREAM arrived (their request trailers, say).
_RESET_MEMORY = 1024


class Http2Streams:
    """The stream state of one connection; ``transport`` is None once it is closed."""

    transport: asyncio.Transport | None

    def __init__(self, max_body_bytes: int, budget: BufferBudget | None) -> None:
        self.max_body_bytes = max_body_bytes
        #: The worker's cap on request bytes held across connections (``_budget``).
        self._budget = budget
        self.transport = None
        self._loop = asyncio.get_running_loop()
        self._recv = ReceiveWindow(max(MIN_CONNECTION_WINDOW, max_body_bytes + 2 * 2**16))
        self._send = SendWindows()
        self._floods = FloodGuard(self._loop.time)
        self._write_paused = False
        self._last_active = self._loop.time()
        self._headers = HeaderDecoder(MAX_HEADER_LIST_BYTES)
        self._streams: dict[int, Stream] = {}
        self._last_stream = 0
        self._continuation: tuple[int, int, bytearray] | None = None  # stream, flags, block
        self._going_away = False
        self._reset_ids: dict[int, None] = {}  # streams we reset, oldest first

    # -- hooks -----------------------------------------------------------------------

    def request_received(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        """A whole request arrived; answer it with ``send_response``/``send_headers_only``."""
        raise NotImplementedError

    def request_too_large(self, stream_id: int, headers: dict[str, str]) -> None:
        """The body passed ``max_body_bytes``; answer now, later data is dropped."""
        raise NotImplementedError

    def stream_cancelled(self, stream_id: int) -> None:
        """The peer reset the stream or the connection went away before an answer."""

    # -- what the peer's frames make us write ----------------------------------------

    def _control_reply(self, reply: bytes) -> None:
        if self.transport is None:
            return
        if self._write_paused:
            self._floods.queue_control()
        self.transport.write(reply)

    def _release(self, size: int) -> None:
        """``size`` bytes of request data are no longer held: the peer may send them again."""
        increment = self._recv.release(size)
        if increment:
            self._grant(0, increment)

    # -- frames ----------------------------------------------------------------------

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is not None and kind != CONTINUATION:
            raise ProtocolViolation(PROTOCOL_ERROR, "expected CONTINUATION")
        if kind == DATA:
            self._on_data(flags, stream_id, payload)
        elif kind == HEADERS:
            block = header_block_of(flags, stream_id, payload)
            if flags & END_HEADERS:
                self._on_header_block(flags, stream_id, block)
            else:
                self._continuation = (stream_id, flags, bytearray(block))
        elif kind == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif kind == SETTINGS:
            self._on_settings(flags, stream_id, payload)
        elif kind == PING:
            if stream_id != 0 or len(payload) != 8:
                raise ProtocolViolation(PROTOCOL_ERROR, "malformed PING")
            if not flags & ACK:
                self._floods.spend(1)
                self._control_reply(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            if stream_id == 0 or len(payload) != 4:
                raise ProtocolViolation(PROTOCOL_ERROR, "malformed RST_STREAM")
            self._floods.spend(1)
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                self._send.blocked.pop(stream_id, None)
                self._give_back(stream)
                if stream.buffered:
                    self._release(stream.buffered)
                self.stream_cancelled(stream_id)
        elif kind == CONTINUATION:
            self._on_continuation(flags, stream_id, payload)
        elif kind == GOAWAY:
            self._going_away = True
            if not self._streams and self.transport is not None:
                self.transport.close()
        elif kind == PUSH_PROMISE:
            raise ProtocolViolation(PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
        elif kind == PRIORITY:
            if stream_id == 0:
                raise ProtocolViolation(PROTOCOL_ERROR, "PRIORITY on stream 0")
            self._floods.spend(1)
        # PRIORITY and unknown frame types are ignored, as the RFC asks.

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise ProtocolViolation(PROTOCOL_ERROR, "unexpected CONTINUATION")
        _, first_flags, block = self._continuation
        self._floods.frame(empty=not payload and not flags & END_HEADERS)
        block += payload
        if len(block) > MAX_HEADER_LIST_BYTES * 2:
            raise ProtocolViolation(PROTOCOL_ERROR, "header block too large")
        if flags & END_HEADERS:
            self._continuation = None
            self._on_header_block(first_flags, stream_id, bytes(block))

    def _on_header_block(self, flags: int, stream_id: int, block: bytes) -> None:
        # Decoded even for streams we refuse: it may update the shared dynamic table.
        try:
            headers = self._headers.decode(block)
        except HeaderBlockError as err:
            raise ProtocolViolation(COMPRESSION_ERROR, str(err)) from err
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers from the client end its side of the stream
            if stream.remote_closed:  # else the request would run a second time
                raise ProtocolViolation(STREAM_CLOSED, f"HEADERS after END_STREAM on {stream_id}")
            if not flags & END_STREAM:
                raise ProtocolViolation(PROTOCOL_ERROR, "second HEADERS without END_STREAM")
            self._end_of_request(stream)
            return
        if stream_id in self._reset_ids:
            return  # sent before our RST_STREAM reached the peer: ignored (RFC 9113 5.1)
        if stream_id % 2 == 0 or stream_id <= self._last_stream:
            raise ProtocolViolation(PROTOCOL_ERROR, f"stream {stream_id} cannot be opened")
        self._last_stream = stream_id
        if self._going_away:
            return
        if len(self._streams) >= MAX_CONCURRENT_STREAMS:
            self._reset(stream_id, REFUSED_STREAM)
            return
        stream = Stream(stream_id, headers)
        self._streams[stream_id] = stream
        if flags & END_STREAM:
            self._end_of_request(stream)

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        size = len(payload)
        self._recv.take(size)
        self._floods.frame(empty=size == 0 and not flags & END_STREAM)
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            if stream_id == 0 or stream_id > self._last_stream:
                raise ProtocolViolation(PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            if stream is None:
                self._release(size)
                return  # a stream we reset or answered early: its data is ignored
            raise ProtocolViolation(STREAM_CLOSED, f"DATA after END_STREAM on {stream_id}")
        stream.take(size)
        data = data_of(flags, payload)
        if stream.discarding:
            self._release(size)
        elif self._budget is not None and not self._budget.take(size):
            # The worker holds all the request data it may: refused, not processed.
            self._release(stream.buffered + size)
            self._send.blocked.pop(stream_id, None)
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
        if flags & END_STREAM:
            self._end_of_request(stream)
            return
        increment = stream.top_up(size)
        if increment:
            self._grant(stream_id, increment)

    def _end_of_request(self, stream: Stream) -> None:
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
            raise ProtocolViolation(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            return
        self._floods.spend(SETTINGS_COST)
        grew = self._send.apply_settings(list(settings_of(payload)))
        self._control_reply(frame(SETTINGS, ACK, 0))
        if grew:
            for stream in list(self._send.blocked.values()):
                self._flush(stream)

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        increment = window_increment_of(payload)
        if stream_id == 0:
            self._send.grow_connection(increment)
            for waiting in list(self._send.blocked.values()):
                self._flush(waiting)
                if self._send.connection <= 0:
                    break
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return  # a stream we already finished: harmless
        if increment == 0:
            self._streams.pop(stream_id, None)
            self._give_back(stream)
            self._send.blocked.pop(stream_id, None)
            self._reset(stream_id, PROTOCOL_ERROR)
            self.stream_cancelled(stream_id)
            return
        self._send.grow_stream(stream, increment)
        if stream.pending is not None:
            self._flush(stream)

    # -- sending ---------------------------------------------------------------------

    def _flush(self, stream: Stream) -> None:
        """Send what the windows allow of ``stream``'s waiting data, then its trailers."""
        transport = self.transport
        if transport is None:
            return
        flushed = self._send.flush(stream)
        if flushed is None:
            return
        frames, done = flushed
        if frames:
            transport.write(frames)
        if done:
            self._finish(stream)

    def _give_back(self, stream: Stream) -> None:
        if stream.held and self._budget is not None:
            self._budget.give(stream.held)
            stream.held = 0

    def _finish(self, stream: Stream) -> None:
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
            self.transport.write(window_update_frame(stream_id, increment))

    def _reset(self, stream_id: int, code: int) -> None:
        # Remembered (the latest few) so frames the peer sent meanwhile are ignored.
        self._reset_ids[stream_id] = None
        if len(self._reset_ids) > _RESET_MEMORY:
            del self._reset_ids[next(iter(self._reset_ids))]
        if self.transport is not None:
            self.transport.write(rst_stream_frame(stream_id, code))

    def _close_soon(self) -> None:
        """The last stream of a connection told GOAWAY has ended: close it."""
        raise NotImplementedError
