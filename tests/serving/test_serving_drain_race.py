"""The drain of an idle keep-alive connection must never lose a request sent on it.

When a worker stops, an idle keep-alive connection is closed after a short wait
(``http.protocol``). A client may send its next request just as that happens. If the
request is already in the socket's receive buffer when the drain closes the socket, the
kernel answers the request with a reset: the client sees "Connection reset by peer"
for a request the server had received (seen once in CI, a looping client during a
rolling replacement). That is the case here, made certain: the worker's event loop is
busy (as it is when it serves other connections) from before the drain's deadline until
after the request has arrived, so the drain's timer comes due with the request unread.

The server is uvicorn with our protocol class on a real socket, in this process, on
uvloop as in a worker; the busy loop is a callback on the loop itself, registered in the
very loop step in which uvicorn's shutdown arms the drain, so the order of events does
not depend on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from shipyard.serving.http import protocol
from shipyard.serving.http.protocol import HttpLimits, protocol_class
from shipyard.testing import wait_until

uvloop = pytest.importorskip("uvloop")

_REQUEST = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _Uvicorn(uvicorn.Server):
    """uvicorn whose shutdown first calls ``on_shutdown`` (if set) in the same loop step."""

    on_shutdown: Callable[[], None] | None = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()
        await super().shutdown(sockets)


class _Server:
    """uvicorn with our protocol on a listening socket of its own, in a thread."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        config = uvicorn.Config(
            _app,
            loop="none",
            http=protocol_class(HttpLimits(idle_timeout=30.0)),
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=30,
        )
        self.uvicorn = _Uvicorn(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            self.loop = runner.get_loop()
            runner.run(self.uvicorn.serve(sockets=[self.listener]))


@contextmanager
def _serving() -> Iterator[_Server]:
    server = _Server()
    server.thread.start()
    try:
        wait_until(lambda: server.uvicorn.started, "the server to start")
        yield server
    finally:
        server.uvicorn.should_exit = True
        server.uvicorn.force_exit = True
        server.thread.join(60)
        server.listener.close()
    assert not server.thread.is_alive()


def _answer(sock: socket.socket) -> bytes:
    """One whole answer (head and a 2-byte body) read from ``sock``."""
    data = b""
    while not (b"\r\n\r\n" in data and data.endswith(b"ok")):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def test_a_request_arriving_as_the_drain_closes_an_idle_connection_is_answered() -> None:
    with _serving() as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(30)
        sock.sendall(_REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200")  # kept alive, now idle
        wake, busy = os.pipe()
        os.write(busy, b"x")
        due = 0.0

        def hold_the_loop() -> None:
            # One of the loop's I/O callbacks, run right after the step that armed the
            # drain: the request arrives meanwhile, so the loop reads it only after this
            # turn's timers have run, the drain's among them (due while this held on).
            assert server.loop is not None
            server.loop.remove_reader(wake)
            sock.sendall(_REQUEST)
            while time.monotonic() < due + 0.2:
                time.sleep(0.01)

        def on_shutdown() -> None:
            # Before uvicorn's shutdown asks each connection to drain, in the same step:
            # the drain's deadline is this loop time plus _DRAIN_IDLE_S.
            nonlocal due
            assert server.loop is not None
            due = server.loop.time() + protocol._DRAIN_IDLE_S
            server.loop.add_reader(wake, hold_the_loop)

        server.uvicorn.on_shutdown = on_shutdown
        server.uvicorn.should_exit = True  # the worker stops: the drain begins
        try:
            answer = _answer(sock)  # the old drain reset the connection here
        finally:
            os.close(wake)
            os.close(busy)
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in answer.lower()
        assert sock.recv(65536) == b""  # and then the connection ends, cleanly


def test_a_request_crossing_the_drains_close_gets_no_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sent just after the server's FIN left (too late to be answered), a request must
    # not make the server's kernel answer with a reset: the server keeps reading until
    # the client closes. The wait for the client's close is long here, so the order of
    # events cannot depend on how fast this machine is.
    monkeypatch.setattr(protocol, "_LINGER_S", 120.0)
    with _serving() as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(30)
        sock.sendall(_REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        server.uvicorn.should_exit = True
        assert sock.recv(65536) == b""  # the drain ended the idle connection (FIN)
        sock.sendall(_REQUEST)  # crosses the FIN
        sock.shutdown(socket.SHUT_WR)
        connections = server.uvicorn.server_state.connections
        wait_until(lambda: not connections, "the server to close the connection")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0  # no RST came
