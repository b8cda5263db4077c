"""Handing a running server's listening sockets to the server that replaces it.

A rolling replacement (``deployers/local/_rolling.py``) starts a new supervisor beside
the running one. Two servers sharing a port through SO_REUSEPORT lose requests: when the
old workers close their sockets, every connection the kernel had already queued on them
is reset. So the new supervisor is *given* the old one's listening sockets instead: it
asks the old supervisor's control socket (``{"op": "handover"}``), which answers with one
JSON line and the sockets' file descriptors attached (SCM_RIGHTS). The new workers accept
on those very sockets (their accept queues included); when the old server stops, the
sockets stay open in the new one and nothing queued is lost.

The control socket is private to the user (0600), like every other command on it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["HANDOVER_OP", "receive_listeners", "send_listeners"]

HANDOVER_OP = "handover"
#: More descriptors than any server has listening sockets (two ports, a few per worker).
_MAX_FDS = 512


def send_listeners(connection: socket.socket, ports: Mapping[str, Sequence[socket.socket]]) -> None:
    """Answer a handover on the control ``connection`` (blocking): the number of sockets
    per port (``{"http": 2, "grpc": 2}``) as one JSON line, their descriptors attached."""
    fds = [s.fileno() for socks in ports.values() for s in socks]
    header = {"ok": True, "counts": {name: len(socks) for name, socks in ports.items()}}
    socket.send_fds(connection, [json.dumps(header).encode() + b"\n"], fds)


def receive_listeners(
    control_path: str | os.PathLike[str], timeout: float = 10.0
) -> dict[str, list[socket.socket]]:
    """Ask the server at ``control_path`` for its listening sockets, per port name, in
    the order they joined their port's SO_REUSEPORT group. Raises ``OSError`` if it
    cannot be reached or refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(Path(control_path)))
        sock.sendall(json.dumps({"op": HANDOVER_OP}).encode() + b"\n")
        data, fds, _, _ = socket.recv_fds(sock, 65536, _MAX_FDS)
        received = [socket.socket(fileno=fd) for fd in fds]
        while data and not data.endswith(b"\n"):
            more = sock.recv(65536)
            if not more:
                break
            data += more
    try:
        answer = json.loads(data)
        if not answer.get("ok"):
            raise OSError(f"the server refused the handover: {answer.get('error')}")
        counts = {str(name): int(n) for name, n in answer["counts"].items()}
        if sum(counts.values()) != len(received):
            raise OSError(f"{len(received)} sockets came with a handover of {counts}")
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as err:
        for s in received:
            s.close()
        raise OSError(f"unreadable handover answer: {err}") from err
    ports: dict[str, list[socket.socket]] = {}
    start = 0
    for name, count in counts.items():
        ports[name] = received[start : start + count]
        start += count
    return ports
