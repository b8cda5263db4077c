"""Predictors the gRPC tests save with their models (their source travels along)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.serving import Predictor


class Shout(Predictor):
    """BYTES in, BYTES and INT64 out: each string upper-cased, and its length."""

    def predict(self, inputs: Any) -> Any:
        items = np.asarray(inputs, dtype=object).ravel()
        upper = np.empty(len(items), dtype=object)
        upper[:] = [bytes(v).upper() for v in items]
        return {"upper": upper, "length": np.array([len(v) for v in items], dtype=np.int64)}


class Picky(Predictor):
    """Doubles its input, but raises its own exception for negative values."""

    def predict(self, inputs: Any) -> Any:
        arr = np.asarray(inputs, dtype=np.float64)
        if (arr < 0).any():
            raise ValueError("Picky refuses negative values")
        return arr * 2


class Dawdle(Predictor):
    """Sleeps (async) ``inputs[0, 0]`` seconds, then echoes: a call that stays in flight.

    It first creates ``started-<pid>`` in ``$GRPC_TEST_MARKS`` (if set), so a test knows
    the call has reached the predictor.
    """

    supports_batching = False

    async def predict(self, inputs: Any) -> Any:
        arr = np.asarray(inputs, dtype=np.float64)
        marks = os.environ.get("GRPC_TEST_MARKS")
        if marks:
            (Path(marks) / f"started-{os.getpid()}").write_text("")
        await asyncio.sleep(float(arr[0, 0]))
        return arr


class Ponder(Predictor):
    """Blocks for 0.2 s per predict call (in a worker thread), so concurrent calls queue up
    behind it and must share the next call: batches form whatever the machine's speed."""

    def predict(self, inputs: Any) -> Any:
        time.sleep(0.2)
        return np.asarray(inputs, dtype=np.float64).sum(axis=1)
