"""The PostgreSQL test clusters: stopped by process group, and one a killed run left
behind is removed by the next run, while a live run's cluster is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pg_cluster import postmaster_pid, remove_stale, server_bindir, start_cluster, stop_cluster

from shipyard.services.process import process_start_time

TESTS = Path(__file__).resolve().parent


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is in group ``pgid``."""
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        try:
            if os.getpgid(pid) == pgid and process_start_time(pid) is not None:
                return True
        except ProcessLookupError:
            continue
    return False


def test_a_killed_runs_cluster_is_removed_and_a_live_ones_is_not() -> None:
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("needs the PostgreSQL server binaries (Debian package postgresql)")
    # A "run" that starts a cluster and is then killed: nothing of it can clean up.
    code = (
        "import sys, time, pg_cluster; from pathlib import Path; "
        f"c = pg_cluster.start_cluster(Path({str(bindir)!r})); print(c.data, flush=True); "
        "time.sleep(600)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    killed = Path(run.stdout.readline().strip())  # blocks until started (or the run died)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=60)
    run.stdout.close()
    assert killed.name.startswith("shipyard-pg-"), killed
    pid = postmaster_pid(killed)
    ours = None
    try:
        assert pid is not None, "the killed run's postmaster should still be running"
        pgid = os.getpgid(pid)
        ours = start_cluster(bindir)  # removes the stale one first
        assert not killed.exists()
        assert not _group_alive(pgid)
        # This process is alive: its cluster stays.
        assert killed not in remove_stale()
        assert ours.data not in remove_stale() and postmaster_pid(ours.data) is not None
        own = os.getpgid(postmaster_pid(ours.data) or 0)
        stop_cluster(ours.data)
        assert not ours.data.exists() and not _group_alive(own)
    finally:
        stop_cluster(killed)
        if ours is not None:
            stop_cluster(ours.data)
