"""Every input kind and every output kind give the model's predictions, in input order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from batch_helpers import FEATURES, expected_logreg, read_output, write_input

from shipyard.batch import predict


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_single_file_inputs(
    fmt: str, tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    src = write_input(frame, tmp_path / f"in.{fmt}", fmt)
    out = tmp_path / "out.parquet"
    # Small shards so even this small file is several shards, read by byte/row ranges.
    summary = predict(
        str(sklearn_model), str(src), str(out), id_column="id", shard_rows=300, shard_bytes=9000
    )
    assert summary.rows == len(frame)
    assert summary.shards > 2
    result = pd.read_parquet(out)
    assert list(result.columns) == ["id", "prediction"]
    assert result["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, frame))


@pytest.mark.parametrize("how", ["dir", "glob"])
def test_directory_and_glob_inputs(how: str, tmp_path: Path, sklearn_model: Path) -> None:
    frames = [
        pd.DataFrame({"id": np.arange(i * 100, i * 100 + 100)}).join(
            pd.DataFrame(np.random.default_rng(i).random((100, 4)), columns=FEATURES)
        )
        for i in range(3)
    ]
    for i, f in enumerate(frames):
        write_input(f, tmp_path / "data" / f"part-{i}.parquet", "parquet")
    (tmp_path / "data" / "_SUCCESS").write_text("")  # marker files are not input
    (tmp_path / "data" / "README.txt").write_text("not data")
    source = str(tmp_path / "data") if how == "dir" else str(tmp_path / "data" / "part-*.parquet")
    out = tmp_path / "out.csv"
    summary = predict(str(sklearn_model), source, str(out), id_column="id", shard_rows=40)
    everything = pd.concat(frames, ignore_index=True)
    result = pd.read_csv(out)
    assert summary.rows == 300
    assert result["id"].tolist() == list(range(300))
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, everything))


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.jsonl", "outdir"])
def test_file_outputs_keep_columns(
    name: str, tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / name
    summary = predict(
        str(sklearn_model),
        str(src),
        str(out),
        id_column="id",
        keep_columns=["city", "a"],
        shard_rows=200,
        workers=2 if name == "outdir" else 1,  # each worker process costs start-up time
    )
    assert summary.workers == (2 if name == "outdir" else 1)
    if out.is_dir():
        parts = sorted(p.name for p in out.iterdir())
        assert parts[0] == "_manifest.json" and parts[1:] == [
            f"part-{i:05d}.parquet" for i in range(4)
        ]
    result = read_output(out)
    assert list(result.columns) == ["id", "city", "a", "prediction"]
    assert result["id"].tolist() == frame["id"].tolist()
    assert result["city"].tolist() == frame["city"].tolist()
    np.testing.assert_allclose(result["a"], frame["a"], rtol=1e-12)
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, frame))


def test_sqlite_table_output(tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame) -> None:
    src = write_input(frame, tmp_path / "in.csv", "csv")
    url = f"sqlite:///{tmp_path / 'out.db'}"
    summary = predict(
        str(sklearn_model),
        str(src),
        url,
        id_column="id",
        keep_columns=["city"],
        table="scores",
        shard_bytes=10_000,
    )
    assert summary.rows == len(frame) and summary.shards > 3
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        result = pd.read_sql("SELECT * FROM scores ORDER BY _row", conn)
        markers = conn.execute(sa.text("SELECT count(*) FROM shipyard_batch_shards")).scalar()
    engine.dispose()
    assert list(result.columns) == ["_row", "id", "city", "prediction"]
    assert result["_row"].tolist() == list(range(len(frame)))
    assert result["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, frame))
    assert markers == summary.shards
    assert not (tmp_path / "out.db.scores.partial").exists()


def test_explicit_columns_and_format(tmp_path: Path, sklearn_model: Path) -> None:
    # Columns named differently from the signature: --columns maps them, in order.
    frame = pd.DataFrame(np.random.default_rng(3).random((50, 4)), columns=["w", "x", "y", "z"])
    src = write_input(frame, tmp_path / "in.jsonl", "jsonl")
    out = tmp_path / "preds"
    predict(str(sklearn_model), str(src), str(out), columns=["w", "x", "y", "z"], format="jsonl")
    result = pd.read_json(out / "part-00000.jsonl", lines=True)
    renamed = frame.set_axis(FEATURES, axis=1)
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, renamed))


def test_a_huge_row_group_is_cut_into_row_ranges(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet", row_group_size=len(frame))
    out = tmp_path / "out"
    summary = predict(
        str(sklearn_model), str(src), str(out), id_column="id", shard_rows=100, batch_size=64,
        workers=2,
    )  # fmt: skip
    assert summary.shards == 5  # 1000 rows > 4 x 100: pieces of ~200 rows
    manifest = json.loads((out / "_manifest.json").read_text())
    assert [r["rows"] for r in manifest["done"].values()] == [200] * 5
    result = pd.read_parquet(out)
    assert result["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, frame))
