"""Custom predictors for the batch tests; save_model copies this module into the model."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.models.predictor import Predictor


class Scaled(Predictor):
    """Pre- and post-processing around a linear score read from the model directory.

    preprocess: a dict of named columns -> a centred matrix; predict: a weighted sum;
    postprocess: a dict of two output columns (a label and the score).
    """

    def load(self, model_dir: Path) -> None:
        self.weights = np.loadtxt(Path(model_dir) / "weights.txt")

    def preprocess(self, request: Any) -> Any:
        return np.column_stack([np.asarray(request[k], dtype=float) - 0.5 for k in "abcd"])

    def predict(self, inputs: Any) -> Any:
        return np.asarray(inputs) @ self.weights

    def postprocess(self, outputs: Any) -> Any:
        return {"label": np.where(outputs > 0, "pos", "neg"), "score": outputs}


class Picky(Predictor):
    """Rejects any batch holding a row whose column ``a`` is negative (a 'bad' row)."""

    def predict(self, inputs: Any) -> Any:
        x = np.asarray(inputs, dtype=float)
        if (x[:, 0] < 0).any():
            raise ValueError("column a must not be negative")
        return x.sum(axis=1)


class Slow(Predictor):
    """A sum of the row that sleeps SHIPYARD_TEST_SLEEP seconds per batch (default 0)."""

    def load(self, model_dir: Path) -> None:
        self.sleep = float(os.environ.get("SHIPYARD_TEST_SLEEP", "0"))

    def predict(self, inputs: Any) -> Any:
        if self.sleep:
            time.sleep(self.sleep)
        return np.asarray(inputs, dtype=float).sum(axis=1)


class AsyncDoubler(Predictor):
    """Async hooks: the batch engine must await them."""

    async def preprocess(self, request: Any) -> Any:
        await asyncio.sleep(0)
        return np.asarray(request, dtype=float)

    async def predict(self, inputs: Any) -> Any:
        return inputs[:, 0] * 2.0


class WhoAmI(Predictor):
    """Answers each row with the id of the process that predicted it."""

    def predict(self, inputs: Any) -> Any:
        return np.full(len(inputs), os.getpid(), dtype=np.int64)


class CountsLoads(Predictor):
    """Appends its process id to the file named by SHIPYARD_TEST_LOADS each time it loads."""

    def load(self, model_dir: Any) -> None:
        with open(os.environ["SHIPYARD_TEST_LOADS"], "a") as fh:
            fh.write(f"{os.getpid()}\n")

    def predict(self, inputs: Any) -> Any:
        return np.full(len(inputs), os.getpid(), dtype=np.int64)
