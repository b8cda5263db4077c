"""The listening sockets of one port of a server: one per worker, the surplus of a
handover being drained, and the kernel's order of the port's SO_REUSEPORT group.

After a handover (``serving._handover``) the new server may have fewer workers than the
old one had sockets. Closing a surplus socket would reset what is queued on it, so it is
drained instead: ``steer`` stops new connections to it (the group's sockets are indexed
in the order they started listening, and the surplus is at the end), the workers keep
accepting on it for a while, and only then is it closed. Where the kernel refuses to
steer, the surplus is served for good instead.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence

from shipyard.serving._ports import bind_listeners, steer

__all__ = ["PortListeners"]


class PortListeners:
    """One port's listening sockets; ``own[i]`` is worker ``i``'s."""

    def __init__(self, own: list[socket.socket], draining: list[socket.socket]) -> None:
        self.own = own
        self.draining = draining
        #: Mirror of the kernel's group array: appended on listen, and closing a socket
        #: moves the last one into its slot (``steer`` indexes this order).
        self.group: list[socket.socket] = [*own, *draining]
        #: False once the surplus may not be closed (steering failed or was undone).
        self.may_close_drained = True

    @classmethod
    def bind(
        cls, host: str, port: int, count: int, inherited: Sequence[socket.socket] = ()
    ) -> PortListeners:
        """``count`` sockets for ``count`` workers: the ``inherited`` ones first (the
        surplus beyond ``count`` is kept for draining), then newly bound ones.

        New sockets added to inherited ones get no connection until ``steer`` says so
        (the program is attached before they listen): nobody accepts on them until our
        workers are up, which can take longer than a client waits."""
        if 0 < len(inherited) < count:
            steer(inherited[0], len(inherited))
        sockets = bind_listeners(host, port, count, inherited)
        return cls(sockets[:count], sockets[count:])

    @property
    def port(self) -> int:
        return int(self.own[0].getsockname()[1])

    def fds_for(self, index: int) -> list[int]:
        """Worker ``index``'s socket, then the surplus sockets it drains."""
        share = self.draining[index :: len(self.own)]
        return [s.fileno() for s in (self.own[index], *share) if s.fileno() >= 0]

    def steer(self, keep: int) -> bool:
        """New connections only to the first ``keep`` sockets of the group."""
        return bool(self.group) and steer(self.group[0], keep)

    def close_drained(self) -> None:
        for sock in self.draining:
            self._close(sock)
        self.draining = []

    def retire(self, index: int) -> None:
        """Close worker ``index``'s socket (a worker given up on): the kernel then stops
        routing connections where nobody accepts. The group order changes under the
        steering program, so it becomes uniform again and the surplus is never closed."""
        if index < len(self.own):
            self._close(self.own[index])
        if self.draining:
            self.may_close_drained = False
            self.steer(len(self.group))

    def handover(self) -> list[socket.socket]:
        """The open sockets, in the group's order (what a successor is given)."""
        return list(self.group)

    def close(self) -> None:
        for sock in list(self.group):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        if sock in self.group:
            i = self.group.index(sock)
            self.group[i] = self.group[-1]
            self.group.pop()
        with contextlib.suppress(OSError):
            sock.close()
