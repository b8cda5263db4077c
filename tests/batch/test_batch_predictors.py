"""Custom predictors run through preprocess -> predict -> postprocess, sync or async."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from batch_helpers import FEATURES, save_custom, write_input

from shipyard.batch import predict


def test_custom_predictor_with_pre_and_postprocessing(tmp_path: Path, frame: pd.DataFrame) -> None:
    weights = np.array([1.0, -2.0, 0.5, 0.25])
    model = save_custom(tmp_path, "Scaled", **{"weights.txt": "\n".join(map(str, weights))})
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out.parquet"
    # input_as=dict: the predictor's preprocess takes named columns, like a V2 client sends.
    summary = predict(
        str(model),
        str(src),
        str(out),
        columns=FEATURES,
        id_column="id",
        input_as="dict",
        batch_size=64,
        workers=2,
        shard_rows=250,
    )
    assert summary.rows == len(frame)
    result = pd.read_parquet(out)
    score = (frame[FEATURES].to_numpy() - 0.5) @ weights
    assert list(result.columns) == ["id", "label", "score"]
    np.testing.assert_allclose(result["score"], score)
    assert result["label"].tolist() == np.where(score > 0, "pos", "neg").tolist()


def test_async_hooks_are_awaited(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "AsyncDoubler")
    src = write_input(frame, tmp_path / "in.csv", "csv")
    out = tmp_path / "out.jsonl"
    predict(str(model), str(src), str(out), columns=["b", "a"], batch_size=100)
    result = pd.read_json(out, lines=True, precise_float=True)
    np.testing.assert_allclose(result["prediction"], frame["b"] * 2.0)


def test_pandas_input_for_predictors_that_want_frames(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "Slow")
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out.parquet"
    predict(str(model), str(src), str(out), columns=["a", "c"], input_as="pandas")
    np.testing.assert_allclose(pd.read_parquet(out)["prediction"], frame["a"] + frame["c"])
