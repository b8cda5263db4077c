"""Start and stop the gRPC Open Inference Protocol server on a worker's event loop.

The server is our own HTTP/2 connection class (``_http2``/``_calls``) on the data plane's
loop, the same loop the HTTP server runs on: calls read in one loop turn reach the
adaptive batcher together, as HTTP requests do, and no call crosses a thread.

Worker processes share one port through SO_REUSEPORT sockets the supervisor binds and
hands them (``serving._ports``); the kernel spreads connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.errors import ServiceError
from shipyard.serving.auth import BearerAuth
from shipyard.serving.grpc._calls import GrpcConnection
from shipyard.serving.grpc._http2 import Http2Limits
from shipyard.serving.grpc._servicer import InferenceServicer

if TYPE_CHECKING:
    from shipyard.serving.dataplane import DataPlane

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "GrpcServerHandle", "start_grpc_server"]

_log = logging.getLogger(__name__)

#: 100 MB, the same limit as the REST body size.
DEFAULT_MAX_MESSAGE_BYTES = 100 * 1024 * 1024


@dataclass(slots=True)
class GrpcServerHandle:
    """A running gRPC server: the port it bound, and how to stop it."""

    port: int
    _server: asyncio.Server
    _connections: set[GrpcConnection]
    _stopped: bool = field(default=False)

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let calls in flight finish for up to ``grace`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.go_away()
        waiting = [c.closed for c in connections if not c.closed.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=max(grace, 0.0))
        for connection in connections:
            connection.abort()


def _address(host: str, port: int) -> str:
    # An IPv6 literal needs brackets to be told apart from the port.
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


async def start_grpc_server(
    dataplane: DataPlane,
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    limits: Http2Limits | None = None,
    max_connections: int = 1000,
    auth: BearerAuth | None = None,
) -> GrpcServerHandle:
    """Serve ``inference.GRPCInferenceService`` for ``dataplane`` on ``host:port``.

    Call it from the event loop that runs the data plane. ``port`` 0 picks a free port
    (see ``.port``); a busy port raises ``ServiceError``. ``sock``, a listening socket
    bound by the supervisor, is served instead of binding ``host:port``. Messages larger
    than ``max_message_bytes`` are refused with RESOURCE_EXHAUSTED. ``limits`` are the
    preface and idle timeouts; past ``max_connections`` open connections, new ones are
    closed at once. With ``auth``, a call without its token ends ``UNAUTHENTICATED``.
    """
    loop = asyncio.get_running_loop()
    methods = InferenceServicer(dataplane).methods()
    connections: set[GrpcConnection] = set()

    def factory() -> GrpcConnection:
        return GrpcConnection(
            methods, max_message_bytes, connections, limits, max_connections, auth
        )

    try:
        if sock is not None:
            server = await loop.create_server(factory, sock=sock)
        else:
            server = await loop.create_server(factory, host.strip("[]"), port)
    except OSError as err:
        raise _bind_error(_address(host, port), err.strerror or str(err)) from err
    bound = server.sockets[0].getsockname()[1]
    for sock in server.sockets:
        with contextlib.suppress(OSError):  # small calls should not wait for Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _log.info("gRPC Open Inference Protocol server listening on %s", _address(host, bound))
    return GrpcServerHandle(port=bound, _server=server, _connections=connections)


def _bind_error(address: str, reason: str) -> ServiceError:
    return ServiceError(
        f"The gRPC server could not bind {address} ({reason}); the port is probably in use "
        "by another program: pick a free one with --grpc-port, or 0 for any."
    )
