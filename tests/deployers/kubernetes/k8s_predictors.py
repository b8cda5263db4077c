"""A custom predictor (pre- and post-processing) the Kubernetes tests save with a model."""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.serving import Predictor


class Scaled(Predictor):
    """Pre: divide by ten; predict: the row sums; post: rounded to two places."""

    def preprocess(self, request: Any) -> Any:
        return np.asarray(request, dtype=float) / 10.0

    def predict(self, inputs: Any) -> Any:
        return np.asarray(inputs).sum(axis=1)

    def postprocess(self, outputs: Any) -> Any:
        return np.round(outputs, 2)
