"""The ports one supervisor serves: one listening socket per worker and port, bound here
or taken over from the server this one replaces (``TAKEOVER_SOCKET_ENV``), the surplus of
a takeover drained once every worker is ready, and all of them handed to a successor.

The mechanisms are below: ``_ports`` binds, ``_listeners.PortListeners`` keeps one port's
sockets and drains, ``_handover`` passes them between servers. This module decides which
sockets a supervisor starts with and what it does with them over its life.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from shipyard.errors import ServiceError
from shipyard.serving._listeners import PortListeners
from shipyard.serving.config import ServerConfig
from shipyard.serving.control import TAKEOVER_SOCKET_ENV

__all__ = ["DRAIN_S", "ServerPorts"]

#: How long the workers keep accepting on the surplus sockets of a handover after new
#: connections were steered away from them, before those are closed: long enough for
#: any handshake the kernel had begun to finish and be accepted.
DRAIN_S = 10.0


class ServerPorts:
    """The HTTP port and the gRPC one (None when gRPC is off or not installed)."""

    def __init__(self, config: ServerConfig, workers: int) -> None:
        self.config = config
        self.workers = workers
        self.http: PortListeners | None = None
        self.grpc: PortListeners | None = None
        self.http_port = 0
        self.grpc_port: int | None = None
        self.took_over = False
        #: Set once a successor was handed our sockets: it counts on our workers to
        #: accept on all of them until we stop, the surplus we drain included.
        self.handed_over = False

    def bind(self) -> None:
        """Bind (or take over) every port; a ``ServiceError`` naming the fix if one fails."""
        from shipyard.serving._ports import PortInUseError

        try:
            self._bind()
        except OSError as err:
            self.close()
            if isinstance(err, PortInUseError):
                raise ServiceError(
                    f"Cannot start: {err.strerror}. Stop it, or pick another port with "
                    "--http-port/--grpc-port (0 for any free one)."
                ) from err
            raise ServiceError(
                f"Cannot bind {self.config.host} (HTTP port {self.config.http_port}, gRPC port "
                f"{self.config.grpc_port or 'HTTP+1'}): {err}. Pick another with "
                "--http-port/--grpc-port, or 0 for any free one."
            ) from err

    def _bind(self) -> None:
        cfg = self.config
        count = self.workers
        inherited = self._take_over()
        self.http = PortListeners.bind(cfg.host, cfg.http_port, count, inherited.get("http", []))
        self.http_port = self.http.port
        if cfg.grpc_enabled and _grpc_available():
            wanted = cfg.grpc_port
            if wanted is None:
                wanted = self.http_port + 1 if cfg.http_port != 0 else 0
            self.grpc = PortListeners.bind(cfg.host, wanted, count, inherited.get("grpc", []))
            self.grpc_port = self.grpc.port

    def _take_over(self) -> dict[str, list[socket.socket]]:
        """The listening sockets of the server this one replaces (``TAKEOVER_SOCKET_ENV``),
        those on the host and ports this one serves; none when it is not a replacement,
        or the old server is gone (then the ports are bound anew)."""
        from shipyard.serving._handover import receive_listeners

        path = os.environ.get(TAKEOVER_SOCKET_ENV)
        if not path:
            return {}
        try:
            ports = receive_listeners(path)
        except OSError as err:
            sys.stderr.write(f"shipyard: no handover from {path} ({err}); binding the ports\n")
            return {}
        cfg = self.config
        wanted = {"http": cfg.http_port, "grpc": cfg.grpc_port}
        if wanted["grpc"] is None and cfg.http_port:
            wanted["grpc"] = cfg.http_port + 1
        kept: dict[str, list[socket.socket]] = {}
        for name, socks in ports.items():
            for sock in socks:
                if _serves(sock, cfg.host, wanted.get(name)):
                    kept.setdefault(name, []).append(sock)
                else:
                    sock.close()  # our copy only: the old server keeps serving it
        self.took_over = bool(kept)
        return kept

    def fds_for(self, index: int) -> tuple[list[int], list[int]]:
        """Worker ``index``'s listening sockets: (HTTP fds, gRPC fds)."""
        if self.http is None:
            raise ServiceError("the supervisor has not bound its ports")
        grpc_fds = self.grpc.fds_for(index) if self.grpc is not None else []
        return self.http.fds_for(index), grpc_fds

    def listeners(self) -> list[PortListeners]:
        return [p for p in (self.http, self.grpc) if p is not None]

    def close(self) -> None:
        for ports in self.listeners():
            ports.close()

    def retire(self, index: int) -> None:
        """Close our copies of worker ``index``'s listening sockets once nobody will accept
        on them again: the kernel then stops routing new connections to them (with
        SO_REUSEPORT it would keep queueing a share of them where nobody answers)."""
        for ports in self.listeners():
            ports.retire(index)

    def settle(self) -> bool:
        """Once every worker is ready after a takeover: spread new connections over the
        workers' own sockets only. True when there is a surplus to close after
        ``DRAIN_S`` (``close_drained``)."""
        if not self.took_over:
            return False
        steered = all(ports.steer(self.workers) for ports in self.listeners())
        if not any(ports.draining for ports in self.listeners()):
            return False
        if not steered:
            for ports in self.listeners():
                ports.may_close_drained = False
            sys.stderr.write("shipyard: cannot steer connections; serving the surplus sockets\n")
            return False
        return True

    def may_close_drained(self) -> bool:
        return not self.handed_over and all(p.may_close_drained for p in self.listeners())

    def close_drained(self) -> None:
        for ports in self.listeners():
            ports.close_drained()

    async def hand_over(self, writer: asyncio.StreamWriter) -> None:
        """Send our listening sockets over the control connection of ``writer`` to the
        server replacing us (``_handover``): it accepts on them beside our workers until
        we stop, then alone."""
        from shipyard.serving._handover import send_listeners

        await writer.drain()
        for _ in range(100):  # the answer before this one must have left first
            if writer.transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.01)
        raw = writer.get_extra_info("socket")
        self.handed_over = True
        ports = {"http": self.http.handover() if self.http else []}
        if self.grpc is not None:
            ports["grpc"] = self.grpc.handover()
        with socket.socket(fileno=os.dup(raw.fileno())) as connection:
            connection.settimeout(5.0)
            await asyncio.to_thread(send_listeners, connection, ports)


def _serves(sock: socket.socket, host: str, port: int | None) -> bool:
    """Whether ``sock`` listens on ``host:port`` (a named port: 0 means a new one)."""
    if not port:
        return False
    try:
        wanted = socket.getaddrinfo(host.strip("[]"), port, sock.family, socket.SOCK_STREAM)
    except OSError:
        return False
    return any(tuple(sock.getsockname()[:2]) == tuple(w[4][:2]) for w in wanted)


def _grpc_available() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("grpc") is not None
        and importlib.util.find_spec("shipyard.serving.grpc.listener") is not None
    )
