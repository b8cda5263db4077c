"""A predictor whose ``load`` takes its time, for the interrupted-update tests (its source
travels with the model). The model directory's ``delay`` file holds the seconds ``load``
sleeps, its ``answer`` file the number every prediction returns, and its ``marks`` file
(optional) a folder where ``load`` notes that it started. With a ``first-is-quick`` file,
the first worker to load (the first to claim ``<marks>/first``) does not sleep."""

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
        delay = float((folder / "delay").read_text())
        if marks.exists():
            noted = Path(marks.read_text())
            (noted / f"loading-{os.getpid()}-{time.time_ns()}").write_text("")
            if (folder / "first-is-quick").exists():
                try:
                    os.close(os.open(noted / "first", os.O_CREAT | os.O_EXCL))
                    delay = 0.0
                except FileExistsError:
                    pass
        time.sleep(delay)
        self.answer = float((folder / "answer").read_text())

    def predict(self, inputs: Any) -> Any:
        return np.full(len(np.asarray(inputs)), self.answer)
