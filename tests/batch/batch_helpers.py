"""Helpers for the batch tests: input frames, saved models, reading outputs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ["a", "b", "c", "d"]


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``id``, four float features and a text column, ``n`` rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": np.arange(n, dtype=np.int64)})
    for name in FEATURES:
        frame[name] = rng.random(n)
    frame["city"] = np.array(["oslo", "lima", "pune"])[np.arange(n) % 3]
    return frame


def save_custom(path: Path, cls: str, example: Any = None, **files: str) -> Path:
    import batch_predictors

    from shipyard.models import save_model

    path.mkdir(parents=True, exist_ok=True)
    saved = save_model(
        None,
        path / "model",
        predictor=getattr(batch_predictors, cls),
        input_example=example,
        name=cls.lower(),
    )
    for name, text in files.items():
        (saved / name).write_text(text)
    return saved


def expected_logreg(model_dir: Path, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """What the model predicts for ``frame`` in one in-process call."""
    from shipyard.models import load_model

    return np.asarray(load_model(model_dir).predict(frame[FEATURES].to_numpy()))


def write_input(frame: pd.DataFrame, path: Path, fmt: str, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False, row_group_size=kw.get("row_group_size", 250))
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    return path


def read_output(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, precise_float=True)
    return pd.read_parquet(path)


RunCli = Callable[..., subprocess.CompletedProcess[str]]
