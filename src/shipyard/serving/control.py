"""The model server's control channel: JSON lines over a Unix socket.

The supervisor of ``shipyard serve`` listens on ``<run_dir>/control.sock`` (or the path
given by ``--control-socket``), mode 0600, so only the user who started the server can
use it. Each request is one JSON object on one line; each answer is one JSON object on one
line; a connection may carry several requests in turn.

Commands:

``{"op": "status"}``
    → ``{"ok": true, "pid": <supervisor pid>, "ready": <every worker ready>,
    "http_port": int, "grpc_port": int | null, "workers": [{"pid": int, "ready": bool,
    "models": [...]}], "models": [{"name", "version", "uri", "ready"}]}``

``{"op": "reload", "model_uri": "<model URI>", "name": "<served name>"}``
    Hot reload with zero downtime, in two phases: every worker loads the new model beside
    the serving one and health-checks it (its input example through ``predict``); only if
    all succeed do they all switch to it (requests in flight finish on the old model).
    If any worker fails, all drop the new model and the old one keeps serving.
    → ``{"ok": true, "models": [...]}`` or ``{"ok": false, "error": "<why>"}``.
    ``name`` may be left out when the server serves exactly one model. A ``name`` not
    served yet adds that model.

Anything else → ``{"ok": false, "error": "..."}``.

``send_command(socket_path, command, timeout)`` is the client; the local model deployer
uses exactly this.

The supervisor-to-worker plumbing lives here too, the one place both sides import: the
environment a worker is started with (``WORKER_*_ENV``, ``worker_env``) and the sockets
that share a port between workers (``bind_reuseport``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from shipyard.errors import ServiceError

__all__ = [
    "CONTROL_SOCKET_NAME",
    "WORKER_CHANNEL_ENV",
    "WORKER_CONFIG_ENV",
    "WORKER_METRICS_ENV",
    "WORKER_MODULE",
    "bind_reuseport",
    "send_command",
    "worker_env",
]

CONTROL_SOCKET_NAME = "control.sock"

#: The module a worker process runs (``python -m``): a fresh interpreter, never a fork.
WORKER_MODULE = "shipyard.serving.worker"
#: The worker's ``ServerConfig`` as JSON.
WORKER_CONFIG_ENV = "SHIPYARD_WORKER_CONFIG"
#: The file descriptor of the worker's end of the supervisor channel (a socketpair).
WORKER_CHANNEL_ENV = "SHIPYARD_WORKER_CHANNEL"
#: The directory the worker writes its metrics file into.
WORKER_METRICS_ENV = "SHIPYARD_WORKER_METRICS_DIR"


def worker_env(config_json: str, channel_fd: int, metrics_dir: Path) -> dict[str, str]:
    """The environment of a worker process: this one's, plus what the worker reads."""
    env = dict(os.environ)
    env[WORKER_CONFIG_ENV] = config_json
    env[WORKER_CHANNEL_ENV] = str(channel_fd)
    env[WORKER_METRICS_ENV] = str(metrics_dir)
    return env


def bind_reuseport(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket on ``host:port`` that other workers can bind too (SO_REUSEPORT).

    The kernel spreads new connections over the listening sockets of the group, so each
    worker accepts its own share without a shared accept queue. With ``listen=False`` the
    socket is bound but not listening: the supervisor holds the port this way (and learns
    which one 0 picked) without joining the group that shares out connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
        sock.setblocking(False)
    return sock


def send_command(
    socket_path: str | os.PathLike[str], command: dict[str, Any], timeout: float = 60.0
) -> dict[str, Any]:
    """Send one command to a running server's control socket and return its answer.

    Raises ``ServiceError`` if the socket cannot be reached or no answer arrives within
    ``timeout`` seconds (a reload loads a model in every worker: allow for that).
    """
    path = Path(socket_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(command).encode() + b"\n")
            buffer = b""
            while not buffer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
    except TimeoutError as err:
        raise ServiceError(
            f"The model server at {path} did not answer {command.get('op')!r} within "
            f"{timeout} s; it may be busy loading a model: retry with a longer timeout."
        ) from err
    except OSError as err:
        raise ServiceError(
            f"Cannot reach the model server's control socket {path}: {err}. Is the server "
            "running (check its pid and log)?"
        ) from err
    if not buffer:
        raise ServiceError(f"The model server at {path} closed the connection without answering.")
    try:
        answer: dict[str, Any] = json.loads(buffer)
    except ValueError as err:
        raise ServiceError(f"The model server at {path} sent an unreadable answer.") from err
    return answer
