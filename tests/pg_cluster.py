"""Throwaway local PostgreSQL clusters for the tests (``/tmp/shipyard-pg-*``), one per test
process that asks for one, on 127.0.0.1 and a free port.

A cluster is stopped by its process group: ``pg_ctl`` starts the postmaster in a session of
its own, so its group is the postmaster and every backend, and nothing else. A run that is
killed (SIGKILL, pytest-timeout's ``thread`` method, the end of a session) cannot stop its
cluster; ``owner.json`` names the process that started it, and the next ``start_cluster``
removes every cluster whose owner is gone. A folder without ``owner.json`` (another
program's, or one an older fixture left) is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from shipyard.services.process import process_start_time
from shipyard.testing import free_port

PREFIX = "shipyard-pg-"


def server_bindir() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` folder (Debian's layout)."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return bins[-1].parent if bins else None


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass(frozen=True)
class Cluster:
    data: Path
    port: int

    @property
    def url(self) -> str:
        """The server's URL without a database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"


def start_cluster(bindir: Path) -> Cluster:
    """initdb and start a cluster owned by this process (stale ones are removed first)."""
    remove_stale()
    data = Path(tempfile.mkdtemp(prefix=PREFIX))
    me = os.getpid()
    (data / "owner.json").write_text(json.dumps({"pid": me, "start_time": process_start_time(me)}))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    db = str(data / "db")
    try:
        subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", db, "-U", "postgres", "--auth=trust"]),
            check=True,
            capture_output=True,
            timeout=300,
        )
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
        start = [str(bindir / "pg_ctl"), "-D", db, "-l", str(data / "log"), "-w", "-o", options]
        subprocess.run(
            _as_postgres([*start, "-t", "120", "start"]),
            check=True,
            capture_output=True,
            timeout=180,
        )
    except BaseException:
        stop_cluster(data)
        raise
    return Cluster(data, port)


def postmaster_pid(data: Path) -> int | None:
    """The running postmaster of the cluster in ``data``; None if none runs."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "db" / "postmaster.pid").read_text().splitlines()[0])
        # A PID is reused: it is this cluster's only while its command line names the folder.
        if str(data / "db").encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    return None


def stop_cluster(data: Path, timeout: float = 30.0) -> None:
    """SIGKILL the postmaster's process group (a throwaway cluster needs no clean
    shutdown), wait until it is gone, remove the folder."""
    pid = postmaster_pid(data)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while process_start_time(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    shutil.rmtree(data, ignore_errors=True)


def remove_stale(root: Path | None = None) -> list[Path]:
    """Stop and remove every cluster under ``root`` (the temp folder) whose owner process
    is gone; returns their folders."""
    removed = []
    for data in sorted(Path(root or tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            owner = json.loads((data / "owner.json").read_text())
            pid, started = int(owner["pid"]), owner["start_time"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours (or still being written: then its owner lives)
        if process_start_time(pid) == started:
            continue
        stop_cluster(data)
        removed.append(data)
    return removed
