"""Helpers for testing code that deploys models: an isolated home, cleanup by PID and
process group (never by name), and a model folder served over HTTP behind basic auth (a
model URI with credentials, really used) with a search for where a secret was written.

Used by Shipyard's own tests; useful to anyone testing a custom model-deployer flavor.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "BasicAuthFiles",
    "DisagreeingModels",
    "files_holding",
    "isolated_home",
    "kill_process_groups",
    "kill_processes_under",
    "kill_services_under",
    "processes_under",
    "save_disagreeing_models",
    "serve_files_with_basic_auth",
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
    from shipyard.deployers.local._control import remove_control_socket

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


@dataclass
class BasicAuthFiles:
    """A folder served on 127.0.0.1 behind basic auth: its port, and the paths it served
    (``authorized``) or refused with 401 (``refused``)."""

    port: int
    authorized: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serve_files_with_basic_auth(root: Path, user: str, password: str) -> Iterator[BasicAuthFiles]:
    """Serve ``root`` over HTTP on a free 127.0.0.1 port, answering only requests that
    carry ``user:password`` as basic auth (others get 401); stopped on exit."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    served = BasicAuthFiles(port=0)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def _allowed(self) -> bool:
            if self.headers.get("Authorization") == expected:
                served.authorized.append(self.path)
                return True
            served.refused.append(self.path)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="models"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_GET(self) -> None:
            if self._allowed():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._allowed():
                super().do_HEAD()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    """Files under ``root`` (symlinks not followed) whose bytes contain ``needle``: where
    a secret was written that should not have been."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


@dataclass(frozen=True)
class DisagreeingModels:
    """Two models that always disagree, a model that cannot load, and their input: what
    an update (a model really changed) and a failed load (the old one keeps serving) are
    tested with."""

    a: str
    b: str
    broken: str
    rows: np.ndarray

    def expected_a(self) -> list[int]:
        import shipyard

        return [int(v) for v in shipyard.load_model(self.a).predict(self.rows)]


def save_disagreeing_models(root: Path) -> DisagreeingModels:
    """Save ``DisagreeingModels`` under ``root`` (``a``, ``b``, ``broken``); needs
    scikit-learn."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import shipyard

    x, y = make_classification(n_samples=300, n_features=4, random_state=0)
    shipyard.save_model(LogisticRegression().fit(x, y), root / "a", input_example=x[:2])
    # Trained on flipped labels: it answers the opposite class of ``a`` for every row.
    shipyard.save_model(LogisticRegression().fit(x, 1 - y), root / "b", input_example=x[:2])
    shipyard.save_model(LogisticRegression().fit(x, y), root / "broken")
    (root / "broken" / "model.joblib").write_bytes(b"not a joblib file")
    return DisagreeingModels(
        a=str(root / "a"), b=str(root / "b"), broken=str(root / "broken"), rows=x[:8]
    )
