"""The model server's control channel: JSON lines over a Unix socket.

The supervisor of ``shipyard serve`` listens on ``<run_dir>/control.sock`` (or the path
given by ``--control-socket``), mode 0600, so only the user who started the server can
use it. Each request is one JSON object on one line; each answer is one JSON object on one
line; a connection may carry several requests in turn.

Commands:

``{"op": "status"}``
    → ``{"ok": true, "pid": <supervisor pid>, "ready": <every worker ready>,
    "http_port": int, "grpc_port": int | null, "workers": [{"pid": int, "ready": bool,
    "models": [...]}], "models": [{"name", "version", "uri", "ready", "fingerprint"}],
    "reload": null | {"model_uri", "name", "deadline"}}``. ``fingerprint`` is
    ``serving.fingerprint.model_fingerprint`` of the files when they were loaded;
    ``reload`` is the reload under way, if any. ``"error"`` (null when healthy) says why
    the server is broken for good: a worker failed to start 5 times in a row (e.g. its
    model was corrupted in place), so the supervisor stopped restarting it; ``ready`` is
    then false, and every live worker's ``/v2/health/ready`` answers 503 with that error.

``{"op": "reload", "model_uri": "<model URI>", "name": "<served name>",
"deadline": <epoch seconds>}``
    Hot reload with zero downtime, in two phases: every worker loads the new model beside
    the serving one and health-checks it (its input example through ``predict``); only if
    all succeed do they all switch to it (requests in flight finish on the old model).
    If any worker fails, all drop the new model and the old one keeps serving.
    → ``{"ok": true, "models": [...]}`` or ``{"ok": false, "error": "<why>"}``.
    ``name`` may be left out when the server serves exactly one model. A ``name`` not
    served yet adds that model; a name no protocol can address is refused up front.
    Once ``deadline`` passes before every worker has loaded the model (default: now +
    ``timeout``, 300 s), or the caller closes the connection first, the reload is
    abandoned and the old model keeps serving: a reload nobody waits for never takes
    effect behind the caller's back.

Anything else → ``{"ok": false, "error": "..."}``.

``send_command(socket_path, command, timeout)`` is the client; the local model deployer
uses exactly this.

The supervisor-to-worker plumbing lives here too, the one place both sides import: the
environment a worker is started with (``WORKER_*_ENV``, ``worker_env``), including the
listening sockets the supervisor bound for it.
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
    "TAKEOVER_PID_ENV",
    "WORKER_AUTH_TOKEN_ENV",
    "WORKER_CHANNEL_ENV",
    "WORKER_CONFIG_ENV",
    "WORKER_GRPC_FD_ENV",
    "WORKER_HTTP_FD_ENV",
    "WORKER_METRICS_ENV",
    "WORKER_MODULE",
    "recv_line",
    "send_command",
    "worker_env",
]

CONTROL_SOCKET_NAME = "control.sock"

#: The module a worker process runs (``python -m``): a fresh interpreter, never a fork.
WORKER_MODULE = "shipyard.serving.worker"
#: The worker's ``ServerConfig`` as JSON.
WORKER_CONFIG_ENV = "SHIPYARD_WORKER_CONFIG"
#: Set on a supervisor started to replace a running one (a rolling replacement): the
#: old supervisor's pid, whose process group may keep listening on the same ports until
#: the new one is ready. Any other listener still makes start-up fail.
TAKEOVER_PID_ENV = "SHIPYARD_TAKEOVER_PID"
#: The file descriptor of the worker's end of the supervisor channel (a socketpair).
WORKER_CHANNEL_ENV = "SHIPYARD_WORKER_CHANNEL"
#: The bearer token the worker requires (the supervisor read it once); never in the
#: config JSON, so nothing that logs or dumps the config can show it.
WORKER_AUTH_TOKEN_ENV = "SHIPYARD_WORKER_AUTH_TOKEN"
#: The directory the worker writes its metrics file into.
WORKER_METRICS_ENV = "SHIPYARD_WORKER_METRICS_DIR"


#: The file descriptors of the listening sockets the supervisor bound for this worker
#: (HTTP; gRPC when served): workers never bind a port themselves (see ``_ports``).
WORKER_HTTP_FD_ENV = "SHIPYARD_WORKER_HTTP_FD"
WORKER_GRPC_FD_ENV = "SHIPYARD_WORKER_GRPC_FD"


def worker_env(
    config_json: str,
    channel_fd: int,
    metrics_dir: Path,
    http_fd: int | None = None,
    grpc_fd: int | None = None,
    auth_token: str | None = None,
) -> dict[str, str]:
    """The environment of a worker process: this one's, plus what the worker reads."""
    env = dict(os.environ)
    if auth_token is not None:
        env[WORKER_AUTH_TOKEN_ENV] = auth_token
    env[WORKER_CONFIG_ENV] = config_json
    env[WORKER_CHANNEL_ENV] = str(channel_fd)
    env[WORKER_METRICS_ENV] = str(metrics_dir)
    for name, fd in ((WORKER_HTTP_FD_ENV, http_fd), (WORKER_GRPC_FD_ENV, grpc_fd)):
        if fd is not None:
            env[name] = str(fd)
    return env


def recv_line(sock: socket.socket) -> bytes:
    """One message of the control protocol: the bytes up to and including its newline, or
    what arrived before the peer closed (empty: closed without a word). Both ends of a
    blocking control socket read this way (``send_command`` and the MLflow socket keeper)."""
    buffer = b""
    while not buffer.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return buffer


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
            buffer = recv_line(sock)
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
