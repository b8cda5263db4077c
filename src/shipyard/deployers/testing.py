"""Helpers for testing code that deploys models: an isolated home, and cleanup by PID and
process group (never by name).

Used by Shipyard's own tests; useful to anyone testing a custom model-deployer flavor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "isolated_home",
    "kill_process_groups",
    "kill_processes_under",
    "kill_services_under",
    "processes_under",
]


@contextlib.contextmanager
def isolated_home(path: Path) -> Iterator[Path]:
    """Point ``SHIPYARD_HOME`` at ``path`` (and no store URL) for the duration."""
    saved = {key: os.environ.get(key) for key in ("SHIPYARD_HOME", "SHIPYARD_STORE_URL")}
    os.environ["SHIPYARD_HOME"] = str(path)
    os.environ.pop("SHIPYARD_STORE_URL", None)
    try:
        yield path
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def kill_services_under(home: Path) -> list[int]:
    """SIGKILL the process group of every service whose run dir is under ``home``.

    Reads each ``services/<uuid>/pid.json`` and kills only a process whose start time
    still matches the recorded one (a reused PID is left alone). Returns the PIDs killed.
    """
    from shipyard.services.process import process_start_time

    killed = []
    for pid_file in sorted((home / "services").glob("*/pid*.json")):
        try:
            info = json.loads(pid_file.read_text())
            pid, started = int(info["pid"]), int(info["start_time"])
        except (OSError, ValueError, KeyError):
            continue
        if process_start_time(pid) != started:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
        killed.append(pid)
    from shipyard.deployers.local.service import remove_control_socket

    for config_file in sorted((home / "services").glob("*/service.json")):
        # A killed server cannot remove its control socket, which may be in a private
        # temp dir (a run dir path too long for a socket address). Each path belongs to
        # one start of one server under ``home``: nothing another server uses.
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            remove_control_socket(str(json.loads(config_file.read_text())["control_socket"]))
    return killed


def processes_under(home: Path) -> list[int]:
    """PIDs of the live processes started with ``SHIPYARD_HOME=home`` (Linux ``/proc``; an
    empty list elsewhere), this process excluded.

    A test's ``home`` is a fresh temporary path, so this finds what the test started (a
    server, a CLI, a detached daemon, one whose Popen never returned) and nothing else.
    """
    wanted = b"SHIPYARD_HOME=" + os.fsencode(str(home))
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if wanted in environ.split(b"\0"):
            found.append(pid)
    return sorted(found)


def kill_process_groups(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGTERM the process group of each of ``pids``, SIGKILL what is left after
    ``timeout``. A process in this process's own group is signalled alone: the group is
    the test runner's."""
    from shipyard.services.process import process_start_time, reap

    own = os.getpgrp()
    targets: dict[int, int | None] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            pgid = os.getpgid(pid)
            targets[pid] = None if pgid == own else pgid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, group in targets.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group is None:
                    os.kill(pid, sig)
                else:
                    os.killpg(group, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in targets:
                reap(pid)  # our own child: collect it, or it stays a zombie
            if all(process_start_time(pid) is None for pid in targets):
                return
            time.sleep(0.05)


def kill_processes_under(home: Path) -> list[int]:
    """Kill every service under ``home`` (``kill_services_under``), then the process group
    of every process still running with ``SHIPYARD_HOME=home``. Returns the PIDs found."""
    killed = kill_services_under(home)
    left = processes_under(home)
    kill_process_groups(left)
    return killed + left
