"""Slow and idle clients: connections that send nothing, stop half-way through a request
or stay idle are closed after their timeout (HTTP and gRPC); past the connection cap a
new connection is refused cleanly."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.serving.http.protocol import _REFUSED_LINGERING
from shipyard.testing import ServerProcess, start_server

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture(scope="module")
def impatient(models_dir: Path) -> Iterator[ServerProcess]:
    pytest.importorskip("grpc")
    env = {"SHIPYARD_SERVER_HEADER_TIMEOUT": "1", "SHIPYARD_SERVER_BODY_TIMEOUT": "1"}
    args = ["--idle-timeout", "1"]
    with start_server(models_dir / "const1", grpc=True, args=args, env=env) as server:
        yield server


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket's 30 s timeout bounds it:
    a server that never closes fails the test)."""
    sock.settimeout(30)
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def test_a_silent_http_connection_is_closed(impatient: ServerProcess) -> None:
    with _connect(impatient.http_port) as sock:
        assert _until_closed(sock) == b""


def test_an_idle_keep_alive_connection_is_closed(impatient: ServerProcess) -> None:
    with _connect(impatient.http_port) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"live":true}')


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /v2/models/const1/infer HTTP/1.1\r\nHost: x\r\n",  # headers never end
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",  # body
    ],
    ids=["headers", "body"],
)
def test_a_half_sent_request_gets_408(impatient: ServerProcess, partial: bytes) -> None:
    with _connect(impatient.http_port) as sock:
        sock.sendall(partial)
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_408_reaches_a_client_still_sending(impatient: ServerProcess) -> None:
    # The client sends its body a byte at a time for 1.5 s, past the 1 s body timeout,
    # and reads only then. The 408 must be there for it: a server that closes outright
    # answers the bytes sent after its close with a reset, which throws the 408 away.
    with _connect(impatient.http_port) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        for _ in range(6):
            time.sleep(0.25)
            sock.sendall(b" ")
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_grpc_connection_without_preface_is_closed(impatient: ServerProcess) -> None:
    assert impatient.grpc_port is not None
    with _connect(impatient.grpc_port) as sock:
        sock.sendall(PREFACE[:10])
        assert _until_closed(sock) == b""


def test_an_idle_grpc_connection_gets_goaway(impatient: ServerProcess) -> None:
    assert impatient.grpc_port is not None
    with _connect(impatient.grpc_port) as sock:
        sock.sendall(PREFACE + struct.pack(">L B L", 4, 0, 0))
        received = _until_closed(sock)
    kinds = []
    offset = 0
    while offset + 9 <= len(received):
        head = struct.unpack_from(">L", received, offset)[0]
        kinds.append(head & 0xFF)
        offset += 9 + (head >> 8)
    assert kinds[-1] == 7  # GOAWAY (NO_ERROR): a client reconnects when it needs to
    assert struct.unpack_from(">L", received, len(received) - 4)[0] == 0


@pytest.fixture
def capped(models_dir: Path) -> Iterator[ServerProcess]:
    """A server whose worker accepts three connections, all three held open."""
    env = {"SHIPYARD_SERVER_MAX_CONNECTIONS": "3"}
    with start_server(models_dir / "const1", env=env) as server:
        held = [_connect(server.http_port) for _ in range(3)]
        try:
            for sock in held:  # each connection is accepted and served
                sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            yield server
        finally:
            for sock in held:
                sock.close()


def _assert_busy(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert b"retry-after: 1" in answer.lower()


def test_connections_past_the_cap_are_refused(capped: ServerProcess) -> None:
    with _connect(capped.http_port) as extra:
        _assert_busy(_until_closed(extra))


def _send_request(sock: socket.socket) -> None:
    """A 1 MB POST, sent whole at once."""
    body = b"[" + b"0.5," * 250_000 + b"0.5]"
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_a_refusal_reaches_a_client_that_sent_its_request_at_once(capped: ServerProcess) -> None:
    # Clients send a request as soon as they connect; past the cap it arrives at a
    # connection the server refuses. Closing that socket outright makes the kernel
    # answer the request's bytes with a reset, and the client gets "Connection reset
    # by peer" (or a broken pipe while still sending) instead of the 503.
    with _connect(capped.http_port) as extra:
        _send_request(extra)
        _assert_busy(_until_closed(extra))


def test_a_flood_past_the_cap_holds_no_more_sockets(capped: ServerProcess) -> None:
    # Refused connections linger (see above) only up to a bound: past it, one more is
    # closed outright, so a request sent on it meets a reset.
    lingering = [_connect(capped.http_port) for _ in range(_REFUSED_LINGERING)]
    try:
        with _connect(capped.http_port) as extra, pytest.raises(OSError) as raised:
            _send_request(extra)
            _until_closed(extra)
        assert isinstance(raised.value, ConnectionResetError | BrokenPipeError), raised.value
    finally:
        for sock in lingering:
            sock.close()
