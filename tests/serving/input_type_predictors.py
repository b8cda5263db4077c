"""Predictors that answer, for each row, which input type they were given: 0 for an
array, 1 for a DataFrame, 2 for a dict (their source travels with their models)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipyard.serving import Predictor


def kind_code(inputs: Any) -> tuple[int, int]:
    """(code, rows) for what a predictor was handed."""
    if isinstance(inputs, pd.DataFrame):
        return 1, len(inputs)
    if isinstance(inputs, dict):
        return 2, len(np.asarray(next(iter(inputs.values()))))
    return 0, len(np.asarray(inputs))


class Reports(Predictor):
    """Declares nothing: its saved signature decides."""

    def predict(self, inputs: Any) -> Any:
        code, rows = kind_code(inputs)
        return np.full(rows, code)


class WantsPandas(Reports):
    """A DataFrame-based preprocess, as data scientists write them."""

    input_type = "pandas"

    def preprocess(self, request: Any) -> Any:
        return request.assign(total=request["a"] + request["b"])


class WantsDict(Reports):
    input_type = "dict"


class Sums(Predictor):
    """b - a for each row, from a DataFrame: wrong if columns are taken by position."""

    input_type = "pandas"

    def predict(self, inputs: Any) -> Any:
        return (inputs["b"] - inputs["a"]).to_numpy()


class Scaled(Predictor):
    """Takes MLflow-style params: multiplies each row's first value by ``params["k"]``."""

    def predict(self, inputs: Any, params: dict[str, Any] | None = None) -> Any:
        k = float((params or {}).get("k", 1.0))
        return np.asarray(inputs)[:, 0] * k


class Sleepy(Predictor):
    """Takes MLflow-style params: sleeps ``params["sleep"]`` seconds, then fails when
    ``params["fail"]`` is set (with a "secret" in the text) or returns the first column."""

    def predict(self, inputs: Any, params: dict[str, Any] | None = None) -> Any:
        import time

        params = params or {}
        time.sleep(float(params.get("sleep", 0.0)))
        if params.get("fail"):
            raise RuntimeError("cannot open /home/alice/.secret-token")
        return np.asarray(inputs)[:, 0]
