"""Predictors the serving tests save with their models (their source travels along)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipyard.models.runtimes.sklearn import SklearnPredictor
from shipyard.serving import Predictor


class LabelledIris(SklearnPredictor):
    """Pre: a dict of named columns (or a 2-D array) → features; post: label names."""

    labels: ClassVar[list[str]] = ["small", "large"]

    def preprocess(self, request: Any) -> Any:
        if isinstance(request, dict):
            return np.column_stack([np.asarray(request[k], dtype=float) for k in "abcd"])
        return np.asarray(request, dtype=float)

    def postprocess(self, outputs: Any) -> Any:
        return {"label": np.array([self.labels[int(i)] for i in outputs])}


class Constant(Predictor):
    """Answers a constant read from ``value.txt`` for each row."""

    def load(self, model_dir: Path) -> None:
        self.value = float((Path(model_dir) / "value.txt").read_text())

    def predict(self, inputs: Any) -> Any:
        return np.full(len(np.asarray(inputs)), self.value)


class Slow(Predictor):
    """Sleeps ``inputs[0, 0]`` seconds (async) before answering: for drain tests. It first
    creates a file in ``$SERVING_TEST_MARKS`` so a test knows the request is in flight."""

    supports_batching = False

    async def predict(self, inputs: Any) -> Any:
        arr = np.asarray(inputs)
        marks = os.environ.get("SERVING_TEST_MARKS")
        if marks:
            (Path(marks) / f"started-{os.getpid()}").write_text("")
        await asyncio.sleep(float(arr[0, 0]))
        return arr[:, 0] * 2


class Raises(Predictor):
    """Raises its own exception for negative values; doubles otherwise (no signature)."""

    def predict(self, inputs: Any) -> Any:
        if (np.asarray(inputs) < 0).any():
            raise ValueError("negative values are not allowed by this predictor")
        # A DataFrame stays a DataFrame (the MLflow table path), an array an array.
        return inputs * 2


class Breakable(Predictor):
    """Loads fine; fails every prediction once ``broken.flag`` is in its directory (written
    after saving): a model that must never replace a good one."""

    def load(self, model_dir: Path) -> None:
        self.broken = (Path(model_dir) / "broken.flag").exists()

    def predict(self, inputs: Any) -> Any:
        if self.broken:
            raise RuntimeError("this model is broken")
        return np.zeros(len(np.asarray(inputs)))


class Sleepy(Predictor):
    """Blocks in a thread for a moment per call, so concurrent requests pile up."""

    def predict(self, inputs: Any) -> Any:
        time.sleep(0.01)
        return np.asarray(inputs).sum(axis=1)


class Shout(Predictor):
    """Text in: upper-cases each string, answers its length and refuses "BOOM" — a
    predictor written for ``str`` (``str(b"hi").upper()`` would be "B'HI'")."""

    def preprocess(self, inputs: Any) -> Any:
        return [str(s).upper() for s in np.asarray(inputs).ravel().tolist()]

    def predict(self, inputs: Any) -> Any:
        if "BOOM" in inputs:
            raise ValueError("the model refuses BOOM")
        return np.array([len(s) for s in inputs], dtype=np.int64)


class Gated(Predictor):
    """Writes each row's first value to ``$SERVING_TEST_MARKS/predicted`` (one a line);
    a negative value blocks the call (in its thread) until ``$SERVING_TEST_MARKS/open``
    exists: a test holds the model busy and sees exactly which requests were predicted."""

    supports_batching = True

    def predict(self, inputs: Any) -> Any:
        values = np.asarray(inputs, dtype=np.float64)[:, 0]
        marks = Path(os.environ["SERVING_TEST_MARKS"])
        with (marks / "predicted").open("a") as log:
            log.write("".join(f"{v}\n" for v in values))
        if (values < 0).any():
            deadline = time.monotonic() + 120
            while not (marks / "open").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return values
