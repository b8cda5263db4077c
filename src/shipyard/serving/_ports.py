"""One server per port: the supervisor binds every listening socket its workers use.

``SO_REUSEPORT`` lets several sockets share a port and the kernel spread connections over
them, which is how N workers serve one port without a shared accept queue. But the kernel
lets *any* process of the same user join that group: a second ``shipyard serve`` on the
same port used to start, print "ready" and take half the connections. So:

* the supervisor first binds the port *without* ``SO_REUSEPORT``: that fails if anything
  holds it (another server, a deployed service, any program), and the error names the
  holder when ``/proc`` tells us who it is;
* then it binds one ``SO_REUSEPORT`` socket per worker itself and hands each worker its
  socket (an inherited file descriptor): workers never bind, so the group holds only this
  server's sockets, and a restarted worker gets the same socket (and the connections
  queued on it meanwhile);
* a server that raced us between the probe and the bind shows up as a foreign listener on
  the port in ``/proc/net/tcp``: both sides see it and refuse to start;
* a rolling replacement does not share the port with the server it replaces: it is
  handed that server's listening sockets (``serving._handover``) and keeps accepting on
  them, so no connection the kernel queued on them is ever reset; ``steer`` lets a
  server with fewer workers stop new connections to the sockets it has no worker for.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PortInUseError", "bind_listeners", "describe_holder", "steer"]

_BACKLOG = 2048


class PortInUseError(OSError):
    """The port is held by someone else; ``str()`` names the port and the holder."""


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _probe(host: str, port: int) -> None:
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only steps over TIME_WAIT leftovers; on Linux it never lets two
        # sockets listen on one port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host.strip("[]"), port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise PortInUseError(
                err.errno, f"port {port} on {host} is already in use by {describe_holder(port)}"
            ) from err
        raise
    finally:
        probe.close()


def bind_listeners(
    host: str, port: int, count: int, inherited: Sequence[socket.socket] = ()
) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port`` sharing it through SO_REUSEPORT.

    ``port`` 0 picks a free port (the same for all). Raises ``PortInUseError`` naming the
    holder if another process holds the port or joins it while we bind. ``inherited``
    are listening sockets on that port handed over by the server this one replaces
    (``serving._handover``): they come first, in order (all of them, even beyond
    ``count``), and only the missing ones are bound anew; their other holder (the old
    server) is then no stranger.
    """
    sockets: list[socket.socket] = list(inherited)
    if port != 0 and not sockets:
        _probe(host, port)
    try:
        for _ in range(count - len(sockets)):
            sock = socket.socket(_family(host), socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host.strip("[]"), port))
            port = sock.getsockname()[1]
            sock.listen(_BACKLOG)
        ours = {os.fstat(s.fileno()).st_ino for s in sockets}
        foreign = [i for i in _listening_inodes(port) if i not in ours]
        if foreign:
            raise PortInUseError(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use by {describe_holder(port, ours)}",
            )
    except BaseException:
        for sock in sockets[len(inherited) :]:
            sock.close()
        raise
    return sockets


# Classic BPF for SO_ATTACH_REUSEPORT_CBPF: A = a random number; A %= keep; return A. The
# kernel sends a new connection to the group's socket at that index (sockets are indexed
# in the order they started listening; closing one moves the last into its slot).
_LD_W_ABS, _ALU_MOD_K, _RET_A = 0x20, 0x94, 0x16
_SKF_AD_RANDOM = 0xFFFFF000 + 56  # SKF_AD_OFF + SKF_AD_RANDOM
_SO_ATTACH_REUSEPORT_CBPF = 51


def steer(sock: socket.socket, keep: int) -> bool:
    """Send the new connections of ``sock``'s SO_REUSEPORT group only to its first
    ``keep`` sockets (in listening order), spread at random; the others get no new
    connection and can be drained and closed without one waiting in their queue.

    Returns False where the kernel refuses the program: the caller then keeps every
    socket served instead of closing any.
    """
    program = [(_LD_W_ABS, 0, 0, _SKF_AD_RANDOM), (_ALU_MOD_K, 0, 0, keep), (_RET_A, 0, 0, 0)]
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HP", len(program), ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError:
        return False
    return True


def _listening_inodes(port: int) -> list[int]:
    """Inodes of the sockets listening on ``port`` (any address), from ``/proc/net``."""
    inodes: list[int] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address "HEX_IP:HEX_PORT", state 0A is LISTEN, inode is field 9.
                listening = len(fields) > 9 and fields[3] == "0A"
                if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.append(int(fields[9]))
    return inodes


def _processes() -> list[Path]:
    """The ``/proc`` folders of the processes this user can see."""
    return [p for p in Path("/proc").iterdir() if p.name.isdigit()]


def _socket_inodes(proc: Path) -> set[int]:
    """Inodes of the sockets process ``proc`` holds open (empty if it cannot be read)."""
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in (proc / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def describe_holder(port: int, exclude: set[int] | None = None) -> str:
    """Who listens on ``port``: "process 123 (shipyard serve ...)" when ``/proc`` shows it
    (only the user's own processes are visible), else "another program"."""
    inodes = {i for i in _listening_inodes(port) if i not in (exclude or set())}
    if inodes:
        for proc in _processes():
            if int(proc.name) != os.getpid() and inodes & _socket_inodes(proc):
                return f"process {proc.name} ({_command_line(proc)})"
    return "another program (not one of this user's processes, or not visible)"


def _command_line(proc: Path) -> str:
    try:
        raw = (proc / "cmdline").read_bytes()
    except OSError:
        return "?"
    words = [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    text = " ".join(words) or "?"
    return text if len(text) <= 160 else text[:157] + "..."
