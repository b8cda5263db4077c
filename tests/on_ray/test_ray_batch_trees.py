"""``engine="ray"`` with a scikit-learn forest: the driver completes the compiled tree
cache, the actors serve from it alone (no scikit-learn, no unpickling), and a batch the
trees do not take (NaN for a finite-only forest) gets scikit-learn's answer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from shipyard.batch import BatchOptions, predict
from shipyard.batch._job import run_job
from shipyard.batch._ray import start_ray_pool
from shipyard.batch._worker import WorkerSpec
from shipyard.errors import ModelLoadError

from .conftest import RAY_WARNINGS, Cluster

pytestmark = RAY_WARNINGS

ROWS = 12_000
SHARD_ROWS = 2_000
LABELS = np.array(["low", "mid", "high"], dtype=object)


def _frame(holes: list[int]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(ROWS, dtype=np.int64)})
    for name in "abcd":
        frame[name] = rng.random(ROWS)
    frame.loc[holes, "b"] = np.nan
    return frame


def _ray_options(
    model_dir: Path, data: Path, out: Path, cluster: Cluster, **extra: Any
) -> BatchOptions:
    """The job's options on the test cluster, id column "id", shards of SHARD_ROWS."""
    return BatchOptions(
        model_uri=str(model_dir),
        input=str(data),
        output=str(out),
        id_column="id",
        shard_rows=SHARD_ROWS,
        engine="ray",
        address=cluster.address,
        **extra,
    )


def test_actors_predict_a_forest_from_its_cache_alone_with_sklearn_s_answers(
    home: Path, ray_cluster: Cluster, tmp_path: Path
) -> None:
    import ray

    from shipyard.models import save_model

    holes = [9_100, 9_107]  # in the fifth shard only
    frame = _frame(holes)
    data = tmp_path / "in.parquet"
    frame.to_parquet(data, index=False, row_group_size=1_000)
    x = frame[list("abcd")].to_numpy()
    model = RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0)
    model.fit(np.nan_to_num(x), LABELS[(x[:, 0] * 3).astype(int).clip(0, 2)])
    model_dir = save_model(model, tmp_path / "rf")
    # A cache from before the finish files: the driver completes it.
    for path in (model_dir / ".shipyard" / "trees").glob("finish-*.json"):
        path.unlink()

    pool = start_ray_pool(ray_cluster.address, None, WorkerSpec(str(model_dir), None, "auto", 1))
    assert list((model_dir / ".shipyard" / "trees").glob("finish-*.json"))
    # (A lambda: Ray ships it by value; the test module is not importable on the nodes.)
    states = ray.get(
        [
            c.actor.__ray_call__.remote(
                lambda actor: (
                    "sklearn" in sys.modules,
                    str(actor.scorer._call.predictor.engine_note),
                )
            )
            for c in pool.children
        ]
    )
    assert len(states) == 2
    assert all(not imported and "scikit-learn not loaded" in note for imported, note in states)

    opts = _ray_options(model_dir, data, tmp_path / "out.parquet", ray_cluster)
    summary = run_job(opts.model_copy(update={"workers": 2}), pool)  # type: ignore[arg-type]
    assert summary.rows == ROWS and summary.rejected == 0 and len(summary.nodes) == 2
    result = pd.read_parquet(tmp_path / "out.parquet")
    assert result["id"].tolist() == list(range(ROWS))
    # scikit-learn's own labels, the NaN rows' too (predicted by scikit-learn itself).
    assert result.iloc[:, -1].tolist() == model.predict(x).tolist()

    local = predict(
        str(model_dir),
        str(data),
        str(tmp_path / "local.parquet"),
        id_column="id",
        shard_rows=SHARD_ROWS,
        workers=2,
    )
    assert local.rows == ROWS
    pd.testing.assert_frame_equal(result, pd.read_parquet(tmp_path / "local.parquet"))


def test_an_actor_whose_lazy_load_fails_fails_the_job_instead_of_skipping_rows(
    home: Path, ray_cluster: Cluster, tmp_path: Path
) -> None:
    from shipyard.models import save_model

    frame = _frame([5])
    data = tmp_path / "in.parquet"
    frame.to_parquet(data, index=False, row_group_size=1_000)
    x = np.nan_to_num(frame[list("abcd")].to_numpy())
    model_dir = save_model(
        RandomForestClassifier(n_estimators=4).fit(x, x[:, 0] > 0.5), tmp_path / "rf"
    )
    pool = start_ray_pool(ray_cluster.address, None, WorkerSpec(str(model_dir), None, "auto", 1))
    ray_ready = [c.loading for c in pool.children]
    import ray

    ray.get(ray_ready)  # loaded from the cache; now the model file goes bad
    (model_dir / "model.joblib").write_bytes(b"gone")
    opts = _ray_options(model_dir, data, tmp_path / "out.parquet", ray_cluster, on_error="skip")
    # The NaN row needs scikit-learn: its load fails, which is the job's error, not the row's.
    with pytest.raises(ModelLoadError, match=r"model\.joblib"):
        run_job(opts.model_copy(update={"workers": 2}), pool)  # type: ignore[arg-type]
