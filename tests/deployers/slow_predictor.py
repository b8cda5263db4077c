"""A predictor that takes its time, for the graceful-stop test (its source travels along)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.serving import Predictor


class Slow(Predictor):
    """Marks the request as started in ``$DEPLOYER_TEST_MARKS``, sleeps ``inputs[0, 0]``
    seconds, then answers twice the first column."""

    supports_batching = False

    def predict(self, inputs: Any) -> Any:
        arr = np.asarray(inputs, dtype=np.float64)
        marks = os.environ.get("DEPLOYER_TEST_MARKS")
        if marks:
            (Path(marks) / f"started-{os.getpid()}").write_text("")
        time.sleep(float(arr[0, 0]))
        return arr[:, 0] * 2
