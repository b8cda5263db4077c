"""HTTP/2 clients for the gRPC server's protocol tests, independent of the server's code.

``H2Client`` drives the ``h2`` library (its own RFC 9113 state machine, flow control and
HPACK) over a blocking socket and keeps, beside h2's events, a log of every frame the
server sent as ``hyperframe`` parsed it. ``RawClient`` writes hand-built frames for what
h2 refuses to send (frames that break the protocol). Every socket read has a timeout, and
every wait has an overall bound, so a server that stops answering fails a test instead of
hanging it.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import hpack
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    PingAckReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from hyperframe.frame import DataFrame, Frame, HeadersFrame, SettingsFrame

__all__ = ["PREFACE", "TIMEOUT", "Answer", "FrameLog", "H2Client", "RawClient", "grpc_body"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Bound on any one wait for the server (reads and whole exchanges).
TIMEOUT = 30.0


def grpc_body(message: bytes, *, compressed: bool = False) -> bytes:
    """One gRPC length-prefixed message."""
    return struct.pack(">BL", int(compressed), len(message)) + message


class FrameLog:
    """Splits a byte stream into frames, as ``hyperframe`` reads them."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.frames: list[Frame] = []

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        new: list[Frame] = []
        while len(self._buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(bytes(self._buffer[:9])))
            if len(self._buffer) < 9 + length:
                break
            frame.parse_body(memoryview(bytes(self._buffer[9 : 9 + length])))
            del self._buffer[: 9 + length]
            new.append(frame)
        self.frames += new
        return new


def _text(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {name: value for name, value in headers}


@dataclass
class Answer:
    """What came back on one stream."""

    headers: dict[str, str] | None = None
    data: bytearray = field(default_factory=bytearray)
    trailers: dict[str, str] | None = None
    ended: bool = False
    reset: int | None = None

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    @property
    def status(self) -> dict[str, str]:
        """The block carrying ``grpc-status``: the trailers, or a trailers-only answer."""
        block = self.trailers if self.trailers is not None else self.headers
        if block is None or "grpc-status" not in block:
            raise AssertionError(f"no grpc-status on this stream: {self}")
        return block

    def message(self) -> bytes:
        """The one length-prefixed, uncompressed message of the answer."""
        data = bytes(self.data)
        compressed, length = struct.unpack_from(">BL", data)
        if compressed or len(data) != 5 + length:
            raise AssertionError(f"not one plain message: flag {compressed}, {len(data)} bytes")
        return data[5:]


class H2Client:
    """One h2c connection (prior knowledge) driven by the ``h2`` library.

    ``settings`` are sent after the preface; the constructor returns once the server's
    SETTINGS arrived and ours were acknowledged. With ``auto_ack`` every DATA frame is
    acknowledged (window updates as h2 sees fit); without it the test grants windows.
    """

    def __init__(
        self, port: int, *, settings: dict[int, int] | None = None, auto_ack: bool = True
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.auto_ack = auto_ack
        self.received = FrameLog()  # every frame the server sent, in order
        self.sent = FrameLog()  # every frame we sent after the preface
        self.events: list[Event] = []
        self.answers: dict[int, Answer] = {}
        self.ping_acks: list[bytes] = []
        self.settings_acks = 0
        self.goaway: ConnectionTerminated | None = None
        self.closed = False
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        data = self.conn.data_to_send()
        self.sock.sendall(data)
        self.sent.feed(data[len(PREFACE) :])
        self.run_until(
            lambda: (
                self.settings_acks > 0
                and any(isinstance(e, RemoteSettingsChanged) for e in self.events)
            ),
            "the SETTINGS exchange",
        )

    # -- plumbing --------------------------------------------------------------------

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sent.feed(data)
            self.sock.sendall(data)

    def receive_once(self) -> list[Event]:
        """One read from the socket (bounded by the socket timeout), fed to h2."""
        data = self.sock.recv(1 << 20)
        if not data:
            self.closed = True
            return []
        frames = self.received.feed(data)
        if self.goaway is not None:
            # h2 closes its state machine on GOAWAY; streams the server still finishes
            # are read from the frames, with h2's own HPACK decoder (its state goes on).
            for frame in frames:
                self._after_goaway(frame)
            return []
        events = self.conn.receive_data(data)
        for event in events:
            self._on_event(event)
        self.events += events
        self.flush()
        return events

    def run_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if self.closed:
                raise AssertionError(f"the server closed the connection before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {TIMEOUT} s")
            self.receive_once()

    def wait_closed(self) -> None:
        """Read until the server closes the connection."""
        deadline = time.monotonic() + TIMEOUT
        while not self.closed:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server kept the connection open for {TIMEOUT} s")
            self.receive_once()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ResponseReceived | DataReceived | TrailersReceived):
            answer = self.answers.setdefault(event.stream_id or 0, Answer())
        if isinstance(event, ResponseReceived):
            answer.headers = _text(event.headers or [])  # type: ignore[arg-type]
        elif isinstance(event, DataReceived):
            answer.data += event.data or b""
            if self.auto_ack and event.stream_id is not None:
                length = event.flow_controlled_length or 0
                self.conn.acknowledge_received_data(length, event.stream_id)
        elif isinstance(event, TrailersReceived):
            answer.trailers = _text(event.headers or [])  # type: ignore[arg-type]
        elif isinstance(event, StreamEnded) and event.stream_id is not None:
            self.answers.setdefault(event.stream_id, Answer()).ended = True
        elif isinstance(event, StreamReset) and event.stream_id is not None:
            self.answers.setdefault(event.stream_id, Answer()).reset = int(event.error_code or 0)
        elif isinstance(event, PingAckReceived):
            self.ping_acks.append(bytes(event.ping_data or b""))
        elif isinstance(event, SettingsAcknowledged):
            self.settings_acks += 1
        elif isinstance(event, ConnectionTerminated):
            self.goaway = event

    def _after_goaway(self, frame: Frame) -> None:
        if not isinstance(frame, HeadersFrame | DataFrame):
            return
        answer = self.answers.setdefault(frame.stream_id, Answer())
        if isinstance(frame, HeadersFrame):
            if "END_HEADERS" not in frame.flags:
                raise AssertionError("a header block split after GOAWAY: not handled here")
            block = _text(self.conn.decoder.decode(frame.data, raw=False))  # type: ignore[arg-type]
            if answer.headers is None:
                answer.headers = block
            else:
                answer.trailers = block
        elif isinstance(frame, DataFrame):
            answer.data += frame.data
        if "END_STREAM" in frame.flags:
            answer.ended = True

    # -- requests --------------------------------------------------------------------

    def request(
        self,
        path: str,
        body: bytes,
        *,
        method: str = "POST",
        content_type: str = "application/grpc",
        extra: tuple[tuple[str, str], ...] = (),
        pad: int | None = None,
        trailers: tuple[tuple[str, str], ...] = (),
    ) -> int:
        """Open a stream and send headers, ``body`` (as the windows allow) and trailers."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            ("content-type", content_type),
            ("te", "trailers"),
            *extra,
        ]
        self.answers[stream_id] = Answer()
        self.conn.send_headers(stream_id, headers, end_stream=not body and not trailers)
        self.flush()
        view = memoryview(body)
        while len(view):
            # A padded frame also spends its padding and the pad-length byte.
            overhead = 0 if pad is None else pad + 1
            window = self.conn.local_flow_control_window(stream_id) - overhead
            if window <= 0:
                self.receive_once()  # wait for the server's WINDOW_UPDATE
                continue
            size = min(window, self.conn.max_outbound_frame_size - overhead, len(view))
            self.conn.send_data(
                stream_id,
                bytes(view[:size]),
                end_stream=size == len(view) and not trailers,
                pad_length=pad,
            )
            view = view[size:]
            self.flush()
        if trailers:
            self.conn.send_headers(stream_id, trailers, end_stream=True)
            self.flush()
        return stream_id

    def wait(self, stream_id: int) -> Answer:
        answer = self.answers[stream_id]
        self.run_until(lambda: answer.done, f"answer on stream {stream_id}")
        return answer

    def call(self, path: str, message: bytes, **options: object) -> Answer:
        """One unary call: ``message`` framed as gRPC, the whole answer back."""
        return self.wait(self.request(path, grpc_body(message), **options))  # type: ignore[arg-type]

    def ping(self, payload: bytes) -> None:
        """PING and wait for its ACK: everything the server wrote before it has arrived."""
        self.conn.ping(payload)
        self.flush()
        self.run_until(lambda: payload in self.ping_acks, f"PING ACK for {payload!r}")

    def close(self) -> None:
        try:
            if not self.closed and self.goaway is None:
                self.conn.close_connection()
                self.flush()
        except OSError:
            pass  # the server is gone already: nothing to say goodbye to
        finally:
            self.sock.close()


class RawClient:
    """Hand-built frames over a socket, for what a correct client library will not send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        self.received = FrameLog()
        # Literals never indexed: our encoder adds nothing to the server's dynamic table.
        self.encoder = hpack.Encoder()
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def headers_frame(
        self, stream_id: int, headers: list[tuple[str, str]], *, end_stream: bool = True
    ) -> HeadersFrame:
        frame = HeadersFrame(stream_id)
        frame.data = self.encoder.encode([hpack.NeverIndexedHeaderTuple(n, v) for n, v in headers])
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame

    def send(self, *frames: Frame) -> None:
        self.sock.sendall(b"".join(frame.serialize() for frame in frames))

    def read_until(self, condition: Callable[[list[Frame]], bool]) -> list[Frame]:
        """Frames until ``condition`` holds for all frames read so far."""
        deadline = time.monotonic() + TIMEOUT
        while not condition(self.received.frames):
            if time.monotonic() > deadline:
                raise AssertionError(f"the frames awaited did not come within {TIMEOUT} s")
            data = self.sock.recv(1 << 16)
            if not data:
                raise AssertionError(f"the server closed the connection: {self.received.frames}")
            self.received.feed(data)
        return self.received.frames

    def read_until_closed(self) -> list[Frame]:
        """Every frame until the server closes the connection."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            data = self.sock.recv(1 << 16)
            if not data:
                return self.received.frames
            self.received.feed(data)
        raise AssertionError(f"the server kept the connection open for {TIMEOUT} s")

    def close(self) -> None:
        self.sock.close()
