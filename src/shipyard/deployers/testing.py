"""Helpers for testing code that deploys models: an isolated home, and cleanup by PID.

Used by Shipyard's own tests; useful to anyone testing a custom model-deployer flavor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

__all__ = ["isolated_home", "kill_services_under"]


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
