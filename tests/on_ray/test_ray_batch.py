"""Batch inference with ``engine="ray"`` on the two-node cluster: the local engine's rows,
order, shards, manifest, --resume and --on-error, with actors on both nodes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.batch import BatchOptions, predict
from shipyard.batch._job import run_job
from shipyard.batch._manifest import JobManifest
from shipyard.batch._ray import start_ray_pool
from shipyard.batch._worker import WorkerSpec
from shipyard.deployers.testing import files_holding
from shipyard.errors import PredictorError, UntrustedModelError

from .conftest import PASSWORD, RAY_WARNINGS, Cluster, RemoteModel

pytestmark = RAY_WARNINGS

ROWS = 20_000
SHARD_ROWS = 2_000


def _input(path: Path, bad: list[int] = ()) -> Path:  # type: ignore[assignment]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(ROWS, dtype=np.int64)})
    for name in "abcd":
        frame[name] = rng.random(ROWS)
    frame.loc[list(bad), "a"] = -1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, row_group_size=1_000)
    return path


@pytest.fixture
def picky(tmp_path: Path) -> str:
    from shipyard.models import save_model

    from . import ray_predictors

    return str(save_model(None, tmp_path / "picky", predictor=ray_predictors.Picky))


def _node_ids() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}


def test_same_rows_as_the_local_engine_with_every_node_reading_its_shards(
    home: Path, ray_cluster: Cluster, picky: str, tmp_path: Path
) -> None:
    data = _input(tmp_path / "in.parquet")
    local = predict(
        picky, str(data), str(tmp_path / "local.parquet"), id_column="id", shard_rows=SHARD_ROWS
    )
    out = tmp_path / "ray"  # a directory: its manifest stays, with each shard's node
    opts = BatchOptions(
        model_uri=picky,
        input=str(data),
        output=f"{out}/",
        id_column="id",
        shard_rows=SHARD_ROWS,
        engine="ray",
        address=ray_cluster.address,
    )
    pool = start_ray_pool(ray_cluster.address, None, WorkerSpec(picky, None, "auto", 1))
    assert len(pool.children) == 2  # one per free CPU: the two nodes' one CPU each
    nodes = _node_ids()
    assert len(nodes) == 2 and set(pool.placed) == nodes  # one actor pinned to each node
    summary = run_job(opts.model_copy(update={"workers": 2}), pool)  # type: ignore[arg-type]
    assert summary.rows == ROWS == local.rows
    assert summary.shards == ROWS // SHARD_ROWS and summary.workers == 2
    # Each shard was read and predicted by the actor of the node the manifest names, and
    # both nodes did some: every actor gets a shard as soon as the first one is ready.
    manifest = JobManifest.read(out)
    assert manifest is not None and manifest.complete
    by_shard = {i: r.node for i, r in manifest.done.items()}
    assert len(by_shard) == summary.shards and set(by_shard.values()) == nodes
    assert summary.nodes == dict(Counter(by_shard.values()))
    assert sum(summary.nodes.values()) == summary.shards
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "local.parquet"))


def test_resume_after_a_failed_job_predicts_each_row_once_in_order(
    home: Path, ray_cluster: Cluster, picky: str, tmp_path: Path
) -> None:
    bad = [15_500, 15_501]  # in the eighth shard
    data = _input(tmp_path / "in.parquet", bad=bad)
    out = tmp_path / "out.parquet"
    common = {"id_column": "id", "shard_rows": SHARD_ROWS, "address": ray_cluster.address}
    with pytest.raises(PredictorError, match="must not be negative"):
        predict(picky, str(data), str(out), engine="ray", on_error="fail", **common)  # type: ignore[arg-type]
    assert not out.exists()
    summary = predict(
        picky,
        str(data),
        str(out),
        engine="ray",
        on_error="skip",
        resume=True,
        **common,  # type: ignore[arg-type]
    )
    assert summary.shards_resumed > 0
    assert summary.rows == ROWS - len(bad) and summary.rejected == len(bad)
    result = pd.read_parquet(out)
    expected = pd.read_parquet(data).drop(index=bad)
    assert result["id"].tolist() == expected["id"].tolist()  # once each, input order
    np.testing.assert_allclose(
        result.iloc[:, -1].to_numpy(), expected[list("abcd")].sum(axis=1).to_numpy()
    )
    assert summary.rejects is not None
    rejects = [json.loads(line) for line in Path(summary.rejects).read_text().splitlines()]
    assert [r["values"]["id"] for r in rejects] == bad
    assert all("must not be negative" in r["error"] for r in rejects)


def test_actors_are_placed_where_their_cpus_are_free() -> None:
    from shipyard.batch._ray import placements

    # Half a CPU free on each node (Serve replicas hold the rest): an actor of 1 CPU would
    # wait forever; two actors of 0.5, one per node, run.
    assert placements({"a": 0.5, "b": 0.5}, None) == [("a", 0.5), ("b", 0.5)]
    # One per free CPU, alternating nodes, so two actors land on two nodes.
    assert placements({"a": 2.0, "b": 1.0}, 2) == [("a", 1.0), ("b", 1.0)]
    # More actors than free CPUs share them.
    assert placements({"a": 1.0}, 3) == [("a", 0.33)] * 3
    assert placements({"a": 0.0}, None) == []


def test_a_remote_pickle_needs_trust_and_its_credentials_stay_out_of_the_actors(
    home: Path, ray_cluster: Cluster, remote_model: RemoteModel, tmp_path: Path
) -> None:
    import joblib
    import ray
    from ray.experimental.internal_kv import _internal_kv_list

    from shipyard._ray.secrets import NAMESPACE

    data = _input(tmp_path / "in.parquet")
    common = {"id_column": "id", "shard_rows": 5_000, "address": ray_cluster.address}
    # Not trusted: refused where the actors load it, the way out named, password masked.
    with pytest.raises(UntrustedModelError) as refused:
        predict(remote_model.uri(), str(data), str(tmp_path / "no.parquet"), engine="ray", **common)  # type: ignore[arg-type]
    assert "--trust" in str(refused.value) and PASSWORD not in str(refused.value)

    # Trusted: the actors fetch it with the password, which their arguments never hold.
    spec = WorkerSpec(remote_model.uri(), None, "auto", 1, trust={"trusted": True})
    pool = start_ray_pool(ray_cluster.address, None, spec)
    given = [ray.get(c.actor.__ray_call__.remote(lambda actor: actor.spec)) for c in pool.children]
    assert given and all(
        PASSWORD not in repr(g) and "{{secret.uri-" in str(g.model_uri) for g in given
    )
    opts = BatchOptions(
        model_uri=remote_model.uri(),
        input=str(data),
        output=f"{tmp_path / 'out'}/",  # a directory: its manifest stays, to be read
        engine="ray",
        trusted=True,
        **common,  # type: ignore[arg-type]
    )
    summary = run_job(opts.model_copy(update={"workers": 2}), pool)  # type: ignore[arg-type]
    assert summary.rows == ROWS and remote_model.authorized
    frame = pd.read_parquet(data)
    expected = joblib.load(remote_model.path).predict(frame[list("abcd")].to_numpy())
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "out").iloc[:, -1], expected)
    assert files_holding(tmp_path / "out", PASSWORD.encode()) == []  # the manifest too
    # The job's secrets are gone from the cluster once it ended; none in the home.
    assert _internal_kv_list("batch-", namespace=NAMESPACE) == []
    assert files_holding(home, PASSWORD.encode()) == []


def test_the_command_ends_with_its_code_and_its_output_written(
    home: Path, ray_cluster: Cluster, picky: str, tmp_path: Path
) -> None:
    """``shipyard batch predict --engine ray`` ends its process without Ray's teardown
    (``end_driver_process``): the summary is still printed whole, the exit code is the
    command's, and a failure is still its one line and code 1."""
    import os
    import subprocess
    import sys

    data = _input(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    command = [
        sys.executable,
        "-m",
        "shipyard.cli.main",
        "batch",
        "predict",
        "--input",
        str(data),
        "--id-column",
        "id",
        "--shard-rows",
        str(SHARD_ROWS),
        "--engine",
        "ray",
        "--address",
        ray_cluster.address,
        "--no-progress",
    ]
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    done = subprocess.run(
        [*command, picky, "--output", str(out), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rows"] == ROWS and sum(summary["nodes"].values()) == ROWS // SHARD_ROWS
    assert pd.read_parquet(out)["id"].tolist() == list(range(ROWS))

    bad = _input(tmp_path / "bad" / "in.parquet", bad=[3])
    failed = subprocess.run(
        [*command[:6], str(bad), *command[7:], picky, "--output", str(tmp_path / "no.parquet")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert failed.returncode == 1
    assert "must not be negative" in failed.stderr and "Traceback" not in failed.stderr
