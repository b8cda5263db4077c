"""LightGBM Boosters in LightGBM's text format (``model.txt``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.models.runtimes._base import FileRuntime, require, rows, save_booster

__all__ = ["LightGBMPredictor", "save"]


def save(model: Any, model_dir: Path) -> str:
    """Write a Booster as ``model.txt``."""
    return save_booster(model, model_dir, "model.txt")


class LightGBMPredictor(FileRuntime):
    """Predicts with ``Booster.predict`` on a 2-D array or DataFrame."""

    supports_batching: ClassVar[bool] = True
    default_files = ("model.txt",)

    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        lgb = require("lightgbm", package="lightgbm", extra="lightgbm", purpose="LightGBM models")
        self.booster = lgb.Booster(model_file=str(self.model_path()))
        # Concurrent predict() on one Booster races inside LightGBM's C++ Predictor set-up
        # (LightGBM issues #6142, #5482); each call is already multi-threaded by OpenMP,
        # so serialising server threads here costs little and keeps results right.
        self._lock = threading.Lock()

    def predict(self, inputs: Any) -> Any:
        x = rows(inputs, "LightGBM model")
        try:
            with self._lock:
                out = self.booster.predict(x)
        except Exception as err:  # LightGBMError for a wrong number of features
            raise InvalidInputError(f"LightGBM rejected the input: {err}") from err
        return np.asarray(out)
