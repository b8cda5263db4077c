"""kill -9 a running job, resume it: exactly the rows of an uninterrupted run, in order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from batch_helpers import RunCli, make_frame, save_custom, write_input

from shipyard.batch import predict

SHARDS = 20


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the parent pid is the 2nd field after ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _done(manifest: Path) -> int:
    try:
        return len(json.loads(manifest.read_text())["done"])
    except (OSError, ValueError, KeyError):
        return 0


def _wait_for(predicate: object, what: str, proc: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        if proc.poll() is not None:
            pytest.fail(f"the job exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _table(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql("SELECT * FROM predictions ORDER BY _row", conn)
    engine.dispose()
    return frame


@pytest.mark.parametrize("target", ["directory", "sqlite"])
def test_resume_after_kill_9(target: str, tmp_path: Path, run_cli: RunCli) -> None:
    model = save_custom(tmp_path, "Slow")
    frame = make_frame(100 * SHARDS, seed=5)
    src = write_input(frame, tmp_path / "in.parquet", "parquet", row_group_size=100)
    if target == "directory":
        out, manifest = str(tmp_path / "out"), tmp_path / "out" / "_manifest.json"
    else:
        out = f"sqlite:///{tmp_path / 'out.db'}"
        manifest = tmp_path / "out.db.predictions.partial" / "_manifest.json"
    args = [
        "batch", "predict", str(model), "--input", str(src), "--output", out,
        "--columns", "a,b", "--id-column", "id", "--keep-columns", "city",
        "--batch-size", "25", "--shard-rows", "100", "--workers", "2",
    ]  # fmt: skip
    env = {**os.environ, "SHIPYARD_TEST_SLEEP": "0.1"}  # 0.4 s per shard: killable mid-way
    job = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", *args, "--no-progress"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        _wait_for(lambda: _done(manifest) >= 3, "3 finished shards", job, limit=120)
        workers = _children(job.pid)
        os.kill(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
        # The workers die with their parent (no orphan keeps writing parts).
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in workers if _alive(p)]
    finally:
        for pid in [job.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        job.wait(timeout=30)
    finished = _done(manifest)
    assert 3 <= finished < SHARDS, "the kill must land mid-job"

    resumed = run_cli(*args, "--resume", "--json", env={"SHIPYARD_TEST_SLEEP": "0"})
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["shards_resumed"] == finished
    assert (summary["rows"], summary["rejected"]) == (len(frame), 0)

    # The same job, never interrupted.
    if target == "directory":
        reference = tmp_path / "reference"
        predict(str(model), str(src), str(reference), columns=["a", "b"], id_column="id",
                keep_columns=["city"], batch_size=25, shard_rows=100)  # fmt: skip
        got, want = pd.read_parquet(out), pd.read_parquet(reference)
    else:
        ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
        predict(str(model), str(src), ref_url, columns=["a", "b"], id_column="id",
                keep_columns=["city"], batch_size=25, shard_rows=100)  # fmt: skip
        got, want = _table(out), _table(ref_url)
        assert got["_row"].tolist() == list(range(len(frame)))
    pd.testing.assert_frame_equal(got, want)
    assert got["id"].tolist() == frame["id"].tolist()
    pd.testing.assert_series_equal(
        got["prediction"], (frame["a"] + frame["b"]).rename("prediction"), check_exact=True
    )
