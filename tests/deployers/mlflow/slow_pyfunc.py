"""An MLflow pyfunc model (logged "from code") whose load takes its time, for the
interrupted-update tests. Its ``model_config`` holds ``delay`` (seconds ``load_context``
sleeps), ``answer`` (what every prediction is) and ``marks`` (a folder where each load
notes that it started)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.pyfunc.model import PythonModel


class SlowLoad(PythonModel):  # type: ignore[misc,unused-ignore]  # Any without mlflow
    def load_context(self, context: Any) -> None:
        config = context.model_config
        (Path(config["marks"]) / f"loading-{os.getpid()}-{time.time_ns()}").write_text("")
        time.sleep(float(config["delay"]))
        self.answer = float(config["answer"])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[float]:
        return [self.answer] * len(model_input)


mlflow.models.set_model(SlowLoad())
