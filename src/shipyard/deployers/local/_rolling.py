"""Rolling replacement of a local model server: a change a hot reload cannot make (worker
count, ports, host) without an outage.

A second supervisor is started beside the running one with the new settings. On the same
ports it is handed the old one's listening sockets (``serving._handover``) and its
workers accept on them beside the old workers, so the URL never stops answering and no
connection waiting in a socket's queue is lost when the old ones stop. Only when every
new worker is ready (the new supervisor's control ``status`` says so) is the old
supervisor told to stop, and it drains its requests in flight (SIGTERM). If the new one
fails to come up in time it is killed and the old one keeps serving, untouched.

While both run, the new process is recorded in ``pid.next.json`` (so an interrupted
replacement leaves nothing unknown behind: the next status check kills it); it becomes
``pid.json`` once ready, and the old one is recorded in ``pid.previous.json`` until it has
stopped (a caller killed between the two steps leaves it to the next status check, which
tells it to drain and leave, rather than serving the old settings beside the new).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from shipyard.deployers.local._control import remove_control_socket, workers_ready
from shipyard.errors import DeploymentError, ServiceError
from shipyard.services import process
from shipyard.services.service import ServiceStatus

__all__ = [
    "NEXT_PID_FILE",
    "PREVIOUS_PID_FILE",
    "Restartable",
    "Rollable",
    "abandon_next",
    "failed_update",
    "restart_with",
    "retire_previous",
    "roll",
]


class Rollable(Protocol):
    """A local daemon whose supervisor hands over its listening sockets and answers
    ``status`` with ``ready`` on a control socket: ``LocalModelServer``, and the mlflow
    flavor's servers (either engine may replace the other)."""

    uuid: str
    control_socket: str

    @property
    def run_path(self) -> Path: ...
    @property
    def log_path(self) -> Path: ...
    @property
    def pid_file(self) -> Path: ...
    def pid_info(self) -> tuple[int, int] | None: ...
    def command(self) -> list[str]: ...
    def environment(self) -> dict[str, str]: ...
    def write_banner(self, command: list[str]) -> None: ...
    def persist(self) -> None: ...


class Restartable(Rollable, Protocol):
    """A ``Rollable`` server that can also be started, and records its status."""

    status: ServiceStatus

    @property
    def is_running(self) -> bool: ...
    def start(self, timeout: float = 60.0) -> None: ...


NEXT_PID_FILE = "pid.next.json"
PREVIOUS_PID_FILE = "pid.previous.json"
_POLL_S = 0.1


def roll(server: Rollable, timeout: float) -> None:
    """Replace ``server``'s running processes by ones started from its current fields
    (already set to the new settings by the caller). Raises ServiceError if the new
    processes do not become ready within ``timeout``; the old ones then keep serving."""
    from shipyard.serving.control import TAKEOVER_SOCKET_ENV

    old = server.pid_info()
    old_socket = server.control_socket
    if old is None:
        raise ServiceError(f"The model server {server.uuid} is not running: nothing to replace.")
    server.control_socket = ""  # the old supervisor keeps its socket until it stops
    command = server.command()
    next_path = server.run_path / NEXT_PID_FILE
    server.write_banner(command)
    try:
        # The new supervisor is handed the old one's listening sockets (no sharing).
        env = {**server.environment(), TAKEOVER_SOCKET_ENV: str(old_socket)}
        pid, start_time = process.spawn_detached(command, log_path=server.log_path, env=env)
    except OSError as err:
        server.control_socket = old_socket
        raise ServiceError(f"Cannot start the new processes of {server.uuid}: {err}") from err
    # Not persisted yet: until the new processes are ready the record names the old ones.
    next_path.write_text(json.dumps({"pid": pid, "start_time": start_time}))
    ready, why = _wait_ready(server, pid, start_time, timeout)
    if not ready:
        process.terminate(pid, start_time, timeout=5.0, force=True)
        next_path.unlink(missing_ok=True)
        remove_control_socket(server.control_socket)
        server.control_socket = old_socket
        raise ServiceError(
            f"The new processes of {server.uuid} did not become ready within {timeout:.0f}s "
            f"({why}); the running ones keep serving. See its log: {server.log_path}"
        )
    # The new one serves: it becomes the server, and the old one drains and leaves.
    previous_path = server.run_path / PREVIOUS_PID_FILE
    previous_path.write_text(json.dumps({"pid": old[0], "start_time": old[1]}))
    server.pid_file.write_text(next_path.read_text())
    next_path.unlink(missing_ok=True)
    server.persist()
    process.terminate(*old, timeout=timeout)
    previous_path.unlink(missing_ok=True)
    remove_control_socket(old_socket)


def _wait_ready(server: Rollable, pid: int, start_time: int, timeout: float) -> tuple[bool, str]:
    """Whether the new supervisor reports every worker ready before ``timeout``; else why."""
    deadline = time.monotonic() + timeout
    why = "no answer yet"
    while time.monotonic() < deadline:
        if process.process_start_time(pid) != start_time:
            return False, f"the new supervisor {process.exit_description(process.reap(pid))}"
        ready, why = workers_ready(server.control_socket)
        if ready:
            return True, ""
        time.sleep(_POLL_S)
    return False, why


def restart_with(
    server: Restartable,
    target: str,
    timeout: float,
    apply: Callable[[], Callable[[], None]],
) -> None:
    """Put into effect settings a hot reload cannot change: ``apply`` sets them on
    ``server``'s fields (and returns what sets the old ones back), then its running
    processes are replaced rolling (``roll``: no outage), or it is started if it was
    stopped. If that fails, the old fields are put back, the old processes keep serving,
    and DeploymentError (recorded on the server) says why the update to ``target`` (the
    model, as the user knows it) failed."""
    was_running = server.is_running
    restore = apply()
    try:
        if was_running:
            roll(server, timeout)
        else:
            server.start(timeout=timeout)
    except ServiceError as err:
        restore()
        message = f"Updating the model server {server.uuid} to {target} failed: {err}"
        if was_running:
            message += " The previous processes keep serving."
        raise failed_update(server, message) from err


def failed_update(server: Restartable, message: str) -> DeploymentError:
    """The error of a failed update, recorded on the server that keeps serving."""
    server.status.update(server.status.state, message)
    server.persist()
    return DeploymentError(message)


def abandon_next(server: Rollable) -> None:
    """Kill the new processes of a replacement whose caller is gone (still in
    ``pid.next.json``): the old ones, recorded in ``pid.json``, kept serving."""
    path = server.run_path / NEXT_PID_FILE
    recorded = _recorded_process(path)
    if recorded is None:
        return
    pid, start_time = recorded
    process.terminate(pid, start_time, timeout=5.0, force=True)
    path.unlink(missing_ok=True)


def retire_previous(server: Rollable) -> None:
    """Tell the old processes of a finished replacement to drain and stop, when the caller
    died before it could (still in ``pid.previous.json``); forget them once gone."""
    path = server.run_path / PREVIOUS_PID_FILE
    recorded = _recorded_process(path)
    if recorded is None:
        return
    pid, start_time = recorded
    if (pid, start_time) != server.pid_info() and process.process_start_time(pid) == start_time:
        # SIGTERM, not a wait: a status check does not block on a drain; the next one
        # finds it gone.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return
    process.reap(pid)
    path.unlink(missing_ok=True)


def _recorded_process(path: Path) -> tuple[int, int] | None:
    """The (pid, start time) a pid file records; None if there is none or it is unreadable
    (a caller killed while writing it)."""
    try:
        info = json.loads(path.read_text())
        return int(info["pid"]), int(info["start_time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
