"""OS process helpers for daemon services: spawn detached, identify, stop, find ports.

A PID alone does not identify a process: after a server dies its PID can be given to an
unrelated process. We record the kernel's start time of the process (field 22 of
``/proc/<pid>/stat``, in clock ticks since boot) next to the PID and accept the PID as
ours only while both match.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "exit_description",
    "free_port",
    "group_members",
    "port_is_free",
    "process_start_time",
    "reap",
    "spawn_detached",
    "terminate",
]


def process_start_time(pid: int) -> int | None:
    """Start time of a live process ``pid``; None if there is none (or only a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_time = fields[0], fields[19]
    if state in ("Z", "X"):
        return None
    return int(start_time)


def reap(pid: int) -> int | None:
    """Collect the exit status of ``pid`` if it is our exited child; else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if done == pid else None


def exit_description(status: int | None) -> str:
    """'exited with code 1' / 'killed by SIGKILL' / 'is no longer running'."""
    if status is None:
        # Not our child, or already reaped by someone else: the cause is unknown.
        return "is no longer running"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def spawn_detached(
    command: Sequence[str], *, log_path: Path, env: Mapping[str, str]
) -> tuple[int, int]:
    """Start ``command`` in its own session, output appended to ``log_path``.

    The child keeps our working directory (``posix_spawn`` has no cwd argument and a
    ``chdir`` here would race other threads), so callers pass absolute paths.
    Its own session: the terminal's Ctrl-C and the CLI's exit do not reach it, and its
    workers share its process group so they can be stopped together. ``posix_spawn``
    leaves no ``Popen`` object behind to warn about a child that outlives it.
    Returns (pid, start_time).
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ]
        pid = os.posix_spawn(
            command[0], list(command), dict(env), file_actions=actions, setsid=True
        )
    finally:
        os.close(log_fd)
    start_time = process_start_time(pid)
    if start_time is None:
        status = reap(pid)
        raise OSError(f"{command[0]} {exit_description(status)} right after it was started")
    return pid, start_time


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group ``pgid``.

    Read from /proc rather than probed with ``killpg(pgid, 0)``, which also counts
    zombies that wait for a parent (or an init) that may never reap them.
    """
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def terminate(pid: int, start_time: int, *, timeout: float, force: bool = False) -> str:
    """Stop the process ``pid`` (if it is still the one started at ``start_time``) and
    whatever is left of its process group.

    SIGTERM first, so in-flight requests finish; SIGKILL once ``timeout`` has passed, or
    at once with ``force``. Returns how it ended.
    """
    ours = process_start_time(pid) == start_time
    outcome = "not running"
    if ours:
        os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_start_time(pid) == start_time and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.05)
        if process_start_time(pid) == start_time:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while process_start_time(pid) == start_time:
                reap(pid)
                time.sleep(0.01)
            outcome = "killed after timeout"
        else:
            outcome = "killed" if force else "stopped"
        reap(pid)
    # Workers orphaned by a killed supervisor keep the group (and the port) alive. A
    # group id cannot be reused while any member lives, so this only reaches our own.
    if (ours or process_start_time(pid) is None) and group_members(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_members(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.05)
    return outcome


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on the port now (TIME_WAIT leftovers do not count,
    as servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1", exclude: Sequence[int] = ()) -> int:
    """A port nobody listens on now, kept for a service across restarts.

    Chosen below the kernel's ephemeral range: a port from ``bind(0)`` can later be
    taken as the local port of any outgoing connection, and then a restart on the
    service's own port would fail.
    """
    low, _high = _ephemeral_range()
    lowest = 10000 if low > 11000 else 1024
    candidates = list(range(lowest, low))
    random.shuffle(candidates)
    for port in candidates[:500]:
        if port not in exclude and port_is_free(host, port):
            return port
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port
    raise OSError(f"No free port found on {host}")
