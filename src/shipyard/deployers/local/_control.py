"""How the control plane talks to a running local server: its control socket (a fresh
path per start), its bearer-token file, and a hot reload over the socket.

Shared by the local flavor's server and both kinds of ``mlflow`` server (Shipyard's
supervisor, MLflow's server behind the socket keeper).
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from pathlib import Path
from typing import Any

from shipyard.deployers._token import ensure_token_file
from shipyard.errors import DeploymentError, ServiceError
from shipyard.services.local_daemon import LocalDaemonService

__all__ = [
    "TOKEN_FILE",
    "keep_token_file",
    "new_control_socket_path",
    "remove_control_socket",
    "send_reload",
    "workers_ready",
]

#: Prefix of the private temp directory holding a control socket whose path in the run
#: dir would be too long.
_PRIVATE_DIR_PREFIX = "shipyard-ctl-"

#: The bearer token of a server that requires one, in its run dir (0600).
TOKEN_FILE = "auth-token"

# A Unix socket path must fit in sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


def workers_ready(socket_path: str) -> tuple[bool, str]:
    """Whether the supervisor behind ``socket_path`` reports every worker ready (one
    ready worker already answers the health check); else why not."""
    from shipyard.serving.control import send_command

    try:
        status = send_command(socket_path, {"op": "status"}, timeout=5.0)
    except ServiceError as err:
        return False, str(err)  # not listening yet, most likely
    if status.get("ready"):
        return True, ""
    return False, str(status.get("error") or "its workers are not all ready")


def remove_control_socket(path: str) -> None:
    """Remove the control socket of a server that no longer runs, and the private
    directory made for it (only that one: never a directory others may share)."""
    if not path:
        return
    socket_path = Path(path)
    socket_path.unlink(missing_ok=True)
    folder = socket_path.parent
    if folder.name.startswith(_PRIVATE_DIR_PREFIX) and folder.parent == Path(tempfile.gettempdir()):
        with contextlib.suppress(OSError):
            folder.rmdir()  # empty unless something else was put there: then it stays


def new_control_socket_path(run_path: Path, stem: str = "control") -> Path:
    """A fresh control socket path: in ``run_path`` when short enough, else in a private
    directory of its own (0700, unique name) in the temp dir."""
    name = f"{stem}-{secrets.token_hex(4)}.sock"
    path = run_path / name
    if len(str(path)) > _MAX_SOCKET_PATH:
        path = Path(tempfile.mkdtemp(prefix=_PRIVATE_DIR_PREFIX)) / name
    return path


def keep_token_file(service: LocalDaemonService, auth: bool) -> str:
    """The bearer-token file of ``service`` in its run dir, made on first use and kept
    across restarts (so a client's copy of the token stays valid); '' without ``auth``."""
    if not auth:
        return ""
    service._make_run_dir()
    path = service.run_path / TOKEN_FILE
    ensure_token_file(path)
    return str(path)


def send_reload(
    uuid: str, socket_path: str | Path, command: dict[str, Any], timeout: float, target: str
) -> dict[str, Any]:
    """Send a ``reload`` to a server's control socket; its answer if the server took the
    new model (``target`` names it), else DeploymentError saying why (the previous model
    keeps serving: a reload switches only once everything has loaded)."""
    from shipyard.serving.control import send_command

    try:
        answer = send_command(socket_path, command, timeout)
    except ServiceError as err:
        raise DeploymentError(
            f"Could not update the model server {uuid} to {target}: {err}"
        ) from err
    if not answer.get("ok"):
        raise DeploymentError(
            f"The model server {uuid} rejected the new model {target}: "
            f"{answer.get('error', 'no reason given')}. The previous model keeps serving."
        )
    return answer
