"""Worker processes: the coordinator of a multi-worker job never predicts, workers that
were started before the job was planned are stopped however the job ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_helpers import read_output, save_custom, write_input

from shipyard.batch import _pool, predict
from shipyard.errors import ConfigError


class Started:
    """The pools started in a test: their workers (forked by a loader process) and loaders."""

    def __init__(self) -> None:
        self.pools: list[_pool.Pool] = []

    def workers(self) -> list[int]:
        """How many workers each pool was started with."""
        return [len(p.started) for p in self.pools]

    def pids(self) -> list[int]:
        """Every process of every pool that is known by pid: workers that said a word,
        and the loaders (a worker not yet forked dies with its loader)."""
        known = [c.proc.pid for p in self.pools for c in p.started if c.proc.pid is not None]
        return known + [p.loader.pid for p in self.pools if p.loader is not None]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    """The worker pools started in this test."""
    record = Started()
    real_init = _pool.Pool.__init__

    def init(self: _pool.Pool, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        record.pools.append(self)

    monkeypatch.setattr(_pool.Pool, "__init__", init)
    return record


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child that was waited for is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_only_workers_predict(tmp_path: Path, frame: pd.DataFrame, started: Started) -> None:
    import os

    model = save_custom(tmp_path, "WhoAmI")
    src = write_input(frame, tmp_path / "in.parquet", "parquet", row_group_size=100)
    summary = predict(
        str(model), str(src), str(tmp_path / "out"), columns=["a"], shard_rows=200, workers=2
    )
    assert (summary.workers, summary.shards, summary.rows) == (2, 5, len(frame))
    who = set(read_output(tmp_path / "out")["prediction"].tolist())
    assert os.getpid() not in who  # the coordinator only coordinates
    assert started.workers() == [2]
    assert who <= set(started.pids()) and len(who) == 2  # both forked workers predicted
    assert not [p for p in started.pids() if _running(p)]


def test_fewer_shards_than_workers(tmp_path: Path, frame: pd.DataFrame, started: Started) -> None:
    model = save_custom(tmp_path, "WhoAmI")
    src = write_input(frame.head(150), tmp_path / "in.parquet", "parquet", row_group_size=100)
    summary = predict(
        str(model), str(src), str(tmp_path / "out"), columns=["a"], shard_rows=100, workers=3
    )
    # Three workers started before the plan; the two shards keep two of them.
    assert (summary.workers, summary.shards, summary.rows) == (2, 2, 150)
    assert started.workers() == [3]
    assert set(read_output(tmp_path / "out")["prediction"]) <= set(started.pids())
    assert not [p for p in started.pids() if _running(p)]


def test_refused_job_stops_the_early_workers(
    tmp_path: Path, frame: pd.DataFrame, started: Started
) -> None:
    model = save_custom(tmp_path, "WhoAmI")
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out"
    out.mkdir()
    (out / "someone-elses.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="already exists"):
        predict(str(model), str(src), str(out), columns=["a"], workers=2)
    assert started.workers() == [2]
    assert not [p for p in started.pids() if _running(p)]
    assert (out / "someone-elses.txt").read_text() == "keep me"


def test_resume_of_a_finished_job_needs_no_worker(
    tmp_path: Path, frame: pd.DataFrame, started: Started
) -> None:
    model = save_custom(tmp_path, "WhoAmI")
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out"
    first = predict(str(model), str(src), str(out), columns=["a"], shard_rows=500, workers=2)
    before = read_output(out)
    again = predict(
        str(model), str(src), str(out), columns=["a"], shard_rows=500, workers=2, resume=True
    )
    assert (again.shards_resumed, again.rows) == (first.shards, len(frame))
    pd.testing.assert_frame_equal(read_output(out), before)
    assert started.workers() == [2, 2]  # the second run's two stopped unused
    assert not [p for p in started.pids() if _running(p)]


def test_the_model_loads_once_for_all_workers(
    tmp_path: Path, frame: pd.DataFrame, started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = tmp_path / "loads.txt"
    monkeypatch.setenv("SHIPYARD_TEST_LOADS", str(loads))
    model = save_custom(tmp_path, "CountsLoads")
    loads.unlink(missing_ok=True)
    src = write_input(frame, tmp_path / "in.parquet", "parquet", row_group_size=100)
    summary = predict(
        str(model), str(src), str(tmp_path / "out"), columns=["a"], shard_rows=200, workers=2
    )
    assert summary.workers == 2
    loaders = loads.read_text().split()
    who = set(read_output(tmp_path / "out")["prediction"].tolist())
    workers = {c.proc.pid for p in started.pools for c in p.started if c.proc.pid is not None}
    # One load, in the loader process, for two workers forked from it. Which of the two
    # took the shards is up to the scheduler (one fast worker may take all of them), so
    # the test asks only that every prediction came from one of the forked workers.
    assert len(loaders) == 1 and started.workers() == [2]
    assert who and who <= workers
    assert int(loaders[0]) not in who
    assert int(loaders[0]) in [p.loader.pid for p in started.pools if p.loader is not None]
