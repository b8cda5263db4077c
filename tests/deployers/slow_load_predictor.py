"""A predictor whose ``load`` takes its time, for the interrupted-update tests (its source
travels with the model). The model directory's ``delay`` file holds the seconds ``load``
sleeps, its ``answer`` file the number every prediction returns, and its ``marks`` file
(optional) a folder where ``load`` notes that it started."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.serving import Predictor


class SlowLoad(Predictor):
    def load(self, model_dir: Any) -> None:
        folder = Path(model_dir)
        marks = folder / "marks"
        if marks.exists():
            (Path(marks.read_text()) / f"loading-{os.getpid()}-{time.time_ns()}").write_text("")
        time.sleep(float((folder / "delay").read_text()))
        self.answer = float((folder / "answer").read_text())

    def predict(self, inputs: Any) -> Any:
        return np.full(len(np.asarray(inputs)), self.answer)
