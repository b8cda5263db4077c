"""A worker's metrics file is written in a thread (a rename may wait for the disk); a
slower, older write never replaces a newer one, so counters never go backwards."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shipyard.serving.metrics import Metrics, render

LABELS = (("model", "m"), ("protocol", "v2"), ("status", "200"))


def _total(directory: Path) -> str:
    import orjson

    snapshots = [orjson.loads(p.read_bytes()) for p in directory.glob("worker-*.json")]
    line = next(
        x for x in render(snapshots).splitlines() if x.startswith("shipyard_requests_total{")
    )
    return line.rsplit(" ", 1)[1]


def test_the_file_is_written_off_the_event_loop(tmp_path: Path) -> None:
    metrics = Metrics(tmp_path)
    for _ in range(3):
        metrics.observe_request("m", "v2", 200, 0.001)
    asyncio.run(metrics.flush_in_thread())
    assert not metrics.dirty
    assert _total(tmp_path) == "3"


def test_an_older_snapshot_never_replaces_a_newer_one(tmp_path: Path) -> None:
    metrics = Metrics(tmp_path)
    metrics.inc("shipyard_requests_total", LABELS)
    older = metrics._take()
    metrics.inc("shipyard_requests_total", LABELS)
    newer = metrics._take()
    path = tmp_path / f"worker-{os.getpid()}.json"
    metrics._write(path, *newer)
    metrics._write(path, *older)  # the thread's write, landing late
    assert _total(tmp_path) == "2"
    metrics.flush()  # a later flush still writes
    metrics.inc("shipyard_requests_total", LABELS)
    metrics.flush()
    assert _total(tmp_path) == "3"
