"""A custom predictor for the Ray batch tests; save_model copies this module into the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.models.predictor import Predictor


class Picky(Predictor):
    """The row sums; rejects any batch holding a row whose first column is negative."""

    def predict(self, inputs: Any) -> Any:
        x = np.asarray(inputs, dtype=float)
        if (x[:, 0] < 0).any():
            raise ValueError("column a must not be negative")
        return x.sum(axis=1)
