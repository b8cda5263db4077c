"""HTTP/2 floods against a real worker process: each is bounded in frames and time, the
worker's memory stays bounded, the flooding connection is closed (GOAWAY
ENHANCE_YOUR_CALM or FLOW_CONTROL_ERROR) or simply no longer read, and another client's
calls keep being answered quickly meanwhile."""

from __future__ import annotations

import contextlib
import socket
import statistics
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hpack import Encoder, NeverIndexedHeaderTuple

from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.testing import ServerProcess, start_server

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MEMORY_BOUND = 50 * 2**20  # the worker may grow by less than this under any flood
INFER = "/inference.GRPCInferenceService/ModelInfer"


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">L B L", (len(payload) << 8) | kind, flags, stream_id) + payload


def _headers_block() -> bytes:
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", INFER),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
    ]
    # Never indexed: the same bytes open any number of streams.
    return bytes(Encoder().encode([NeverIndexedHeaderTuple(k, v) for k, v in headers]))


BLOCK = _headers_block()
SETTINGS, PING, HEADERS, DATA, RST, CONTINUATION, GOAWAY = 4, 6, 1, 0, 3, 9, 7


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from grpc_helpers import save_grpc_models

    models = save_grpc_models(tmp_path_factory.mktemp("flood-models"))
    args = ["--max-body-size", "4000000"]
    with start_server(models / "logistic", workers=1, grpc=True, args=args) as running:
        yield running


class _Probe:
    """Another client: sequential ServerLive calls on its own connection, timed, and the
    worker's peak memory sampled between them."""

    def __init__(self, server: ServerProcess, pid: int) -> None:
        self._channel = grpc.insecure_channel(server.grpc_target)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._stub.ServerLive(pb.ServerLiveRequest(), timeout=30)  # connected before
        self._pid = pid
        self.latencies: list[float] = []
        self.peak = _rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        self._channel.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self._stub.ServerLive(pb.ServerLiveRequest(), timeout=30)
            self.latencies.append(time.perf_counter() - started)
            self.peak = max(self.peak, _rss(self._pid))
            time.sleep(0.01)


def _flood(
    port: int, opening: bytes, chunk: bytes, repeat: int, *, read: bool
) -> tuple[bytes, bool]:
    """Send ``opening`` then ``chunk`` up to ``repeat`` times; stop when the server closes
    or stops reading (a send blocked for 3 s). With ``read`` a thread reads what the
    server sends meanwhile (else nothing is read: a client that ignores our answers).
    Returns what the server sent (a GOAWAY shows why it hung up), and whether every
    chunk could be sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    received = bytearray()

    def reader() -> None:
        try:
            while len(received) < 2**25 and (data := sock.recv(65536)):
                received.extend(data)
        except OSError:
            pass

    thread = threading.Thread(target=reader, daemon=True)
    if not read:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(PREFACE + _frame(SETTINGS, 0, 0) + opening)
        sock.settimeout(3)
        if read:
            thread.start()
        sent_all = True
        for _ in range(repeat):
            try:
                sock.sendall(chunk)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                sent_all = False
                break
        if read:
            # The server may already have reset the connection after its GOAWAY (Linux
            # then says ENOTCONN here); what it sent is in ``received`` either way.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            thread.join(30)
        return bytes(received), sent_all
    finally:
        sock.close()


def _goaway_code(received: bytes) -> int | None:
    offset = 0
    while offset + 9 <= len(received):
        head, _, _ = struct.unpack_from(">L B L", received, offset)
        length, kind = head >> 8, head & 0xFF
        if kind == GOAWAY and offset + 9 + 8 <= len(received):
            return int(struct.unpack_from(">L", received, offset + 13)[0])
        offset += 9 + length
    return None


def _ended(received: bytes) -> str:
    code = _goaway_code(received)
    return {None: "not read any more", 3: "FLOW_CONTROL_ERROR", 11: "ENHANCE_YOUR_CALM"}.get(
        code, f"GOAWAY {code}"
    )


def _many(frame: bytes, count: int) -> bytes:
    return frame * count


def _streams(count: int, first: int = 1) -> bytes:
    return b"".join(_frame(HEADERS, 0x4, first + 2 * i, BLOCK) for i in range(count))


FLOODS: dict[str, tuple[bytes, bytes, int]] = {
    # 2M PINGs (34 MB) whose ACKs are never read.
    "ping": (b"", _many(_frame(PING, 0, 0, b"12345678"), 2000), 1000),
    # The same, from a client that reads the ACKs: the control-frame budget ends it.
    "ping-read": (b"", _many(_frame(PING, 0, 0, b"12345678"), 2000), 1000),
    # 300k SETTINGS.
    "settings": (b"", _many(_frame(SETTINGS, 0, 0), 1000), 300),
    # 1,000 open streams, then SETTINGS changing the initial window back and forth.
    "window-settings": (
        _streams(1000),
        _many(
            _frame(SETTINGS, 0, 0, struct.pack(">HL", 4, 1 << 20))
            + _frame(SETTINGS, 0, 0, struct.pack(">HL", 4, 65535)),
            500,
        ),
        40,
    ),
    # A header block that never ends: 1.5M empty CONTINUATION frames.
    "continuation": (
        _frame(HEADERS, 0, 1, BLOCK),
        _many(_frame(CONTINUATION, 0, 1), 5000),
        300,
    ),
    # 8 streams whose request never ends, sending DATA regardless of windows (400 MB).
    "unfinished-streams": (
        _streams(8),
        b"".join(_frame(DATA, 0, 1 + 2 * i, b"\0" * 16384) for i in range(8)) * 16,
        200,
    ),
    # Rapid reset: HEADERS + DATA + RST_STREAM, 1,000 streams on each of 10 connections.
    "rapid-reset": (
        b"",
        b"".join(
            _frame(HEADERS, 0x4, s, BLOCK)
            + _frame(DATA, 0x1, s, b"\0\0\0\0\0")
            + _frame(RST, 0, s, struct.pack(">L", 8))
            for s in range(1, 2001, 2)
        ),
        1,
    ),
}


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_flood_is_bounded(server: ServerProcess, name: str) -> None:
    pid = int(server.status()["workers"][0]["pid"])
    assert server.grpc_port is not None
    opening, chunk, repeat = FLOODS[name]
    before = _rss(pid)
    with _Probe(server, pid) as probe:
        if name == "rapid-reset":
            # Many connections, each resetting streams with new ids.
            for _ in range(10):
                received, _ = _flood(server.grpc_port, opening, chunk, repeat, read=True)
        else:
            received, _ = _flood(server.grpc_port, opening, chunk, repeat, read=name != "ping")
        time.sleep(0.2)
    growth = probe.peak - before
    assert growth < MEMORY_BOUND, f"{name}: the worker grew by {growth / 2**20:.0f} MiB"
    expected = {
        "ping": "not read any more",  # it may also be told to calm down first
        "ping-read": "ENHANCE_YOUR_CALM",
        "settings": "ENHANCE_YOUR_CALM",
        "window-settings": "ENHANCE_YOUR_CALM",
        "continuation": "ENHANCE_YOUR_CALM",
        "unfinished-streams": "FLOW_CONTROL_ERROR",  # it ignored the windows we gave
        "rapid-reset": "not read any more",  # each connection ends cleanly
    }[name]
    if name != "ping":  # (it cannot read a GOAWAY: it reads nothing)
        assert _ended(received) == expected
    latencies: Any = sorted(probe.latencies)
    assert latencies, "the other client got no answer"
    worst = latencies[-1]
    # Generous for a shared 2-core machine: the typical call well under 100 ms, and no
    # stall of the event loop anywhere near the seconds the floods used to cause.
    assert statistics.median(latencies) < 0.1, f"{name}: median {statistics.median(latencies)}"
    assert worst < 2.0, f"{name}: the other client waited {worst:.3f} s"
