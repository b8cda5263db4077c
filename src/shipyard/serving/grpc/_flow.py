"""HTTP/2 flow control both ways (RFC 9113 section 5.2), and what one stream holds.

Receiving: the peer is granted large windows up front and they are topped up as data
arrives. A stream's own window is credited as its data arrives (its body is bounded by
the message size); the connection window bounds what all streams hold here, so it is
credited back only when a whole request goes to the application (or data is dropped),
never merely because it arrived.

Sending: response data the peer has no window for is held back (the stream is *blocked*)
until a WINDOW_UPDATE, or a larger initial window in SETTINGS, opens it; then the
trailers end the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.serving.grpc._frames import (
    DATA,
    DEFAULT_FRAME,
    DEFAULT_WINDOW,
    FLOW_CONTROL_ERROR,
    MAX_WINDOW,
    PROTOCOL_ERROR,
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_FRAME_SIZE,
    ProtocolViolation,
    frame,
    headers_frames,
)

__all__ = ["MIN_CONNECTION_WINDOW", "RECEIVE_WINDOW", "ReceiveWindow", "SendWindows", "Stream"]

#: What we grant each stream: large, so a request body rarely waits for a window update.
RECEIVE_WINDOW = 16 * 2**20
#: The connection window is the most request data one connection may have buffered here.
#: At least one largest message must fit.
MIN_CONNECTION_WINDOW = 16 * 2**20


@dataclass(slots=True, eq=False)
class Stream:
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

    def take(self, size: int) -> None:
        """``size`` bytes of DATA arrived on this stream."""
        self.recv_window -= size
        if self.recv_window < 0:
            raise ProtocolViolation(FLOW_CONTROL_ERROR, f"DATA beyond stream {self.id}'s window")

    def top_up(self, size: int) -> int:
        """The increment to grant now that ``size`` more bytes arrived (0: not yet)."""
        self.recv_unacked += size
        if self.recv_unacked < RECEIVE_WINDOW // 2:
            return 0
        increment, self.recv_unacked = self.recv_unacked, 0
        self.recv_window += increment
        return increment


class ReceiveWindow:
    """The connection's receive window: how much request data it may still be sent."""

    __slots__ = ("_released", "left", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.left = size
        self._released = 0  # bytes given back to the application, not yet credited

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise ProtocolViolation(FLOW_CONTROL_ERROR, "DATA beyond the connection window")

    def release(self, size: int) -> int:
        """``size`` bytes are no longer held here: the increment to grant now (0: not yet,
        credited in batches)."""
        self._released += size
        if self._released < min(self.size // 4, 2**20):
            return 0
        increment, self._released = self._released, 0
        self.left += increment
        return increment


class SendWindows:
    """What the peer lets us send: the connection window, its initial stream window and
    frame size, and the streams waiting for window (``blocked``)."""

    __slots__ = ("_table_size", "blocked", "connection", "max_frame", "peer_initial")

    def __init__(self) -> None:
        self.connection = DEFAULT_WINDOW
        self.peer_initial = DEFAULT_WINDOW
        self.max_frame = DEFAULT_FRAME
        self.blocked: dict[int, Stream] = {}
        self._table_size: int | None = None  # a size update our next header block owes

    def headers(self, stream_id: int, block: bytes, end_stream: bool) -> bytes:
        table_size, self._table_size = self._table_size, None
        return headers_frames(stream_id, block, end_stream, self.max_frame, table_size)

    def window(self, stream: Stream) -> int:
        return min(self.connection, self.peer_initial + stream.send_credit)

    def response(
        self, stream: Stream, header_block: bytes, data: bytes, trailers: bytes
    ) -> tuple[bytes, bool]:
        """The frames to write now for a response, and whether they end the stream (else
        the rest waits in ``blocked`` for window)."""
        size = len(data)
        if size <= self.window(stream) and size <= self.max_frame:
            # The usual small answer: one write, one system call.
            self.connection -= size
            stream.send_credit -= size
            frames = (
                self.headers(stream.id, header_block, False)
                + frame(DATA, 0, stream.id, data)
                + self.headers(stream.id, trailers, True)
            )
            return frames, True
        head = self.headers(stream.id, header_block, False)
        stream.pending = memoryview(data)
        stream.trailers = trailers
        rest, done = self.flush(stream) or (b"", False)
        return head + rest, done

    def flush(self, stream: Stream) -> tuple[bytes, bool] | None:
        """What the windows allow of ``stream``'s waiting data (then its trailers), and
        whether that ends the stream; None when nothing waits."""
        pending = stream.pending
        if pending is None:
            return None
        frames = []
        while len(pending) and (window := self.window(stream)) > 0:
            size = min(window, self.max_frame, len(pending))
            frames.append(frame(DATA, 0, stream.id, bytes(pending[:size])))
            pending = pending[size:]
            self.connection -= size
            stream.send_credit -= size
        if len(pending):
            stream.pending = pending
            self.blocked[stream.id] = stream
        else:
            stream.pending = None
            self.blocked.pop(stream.id, None)
            frames.append(self.headers(stream.id, stream.trailers or b"", True))
        return b"".join(frames), stream.pending is None

    def apply_settings(self, settings: list[tuple[int, int]]) -> bool:
        """The peer's SETTINGS that concern sending; True when stream windows grew."""
        grew = False
        for key, value in settings:
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolViolation(FLOW_CONTROL_ERROR, "initial window too large")
                # O(1): every stream's window is this plus its own credit.
                grew = grew or value > self.peer_initial
                self.peer_initial = value
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not DEFAULT_FRAME <= value <= 2**24 - 1:
                    raise ProtocolViolation(PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
                self.max_frame = value
            elif key == SETTINGS_HEADER_TABLE_SIZE and value < 4096:
                # We never add to our table, but a smaller limit must still be announced.
                self._table_size = value
        return grew

    def grow_connection(self, increment: int) -> None:
        if increment == 0:
            raise ProtocolViolation(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
        self.connection += increment
        if self.connection > MAX_WINDOW:
            raise ProtocolViolation(FLOW_CONTROL_ERROR, "connection window overflow")

    def grow_stream(self, stream: Stream, increment: int) -> None:
        stream.send_credit += increment
        if self.peer_initial + stream.send_credit > MAX_WINDOW:
            raise ProtocolViolation(FLOW_CONTROL_ERROR, f"stream {stream.id} window overflow")
