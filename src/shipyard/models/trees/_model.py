"""A converted model: its arrays, how to finish the raw sums, and what input it takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.models.trees._ensemble import Ensemble
from shipyard.models.trees._finish import FinishSpec

__all__ = ["Finish", "Recipe", "TreeModel"]

#: Raw sums (rows, outputs) -> what the framework's method returns.
Finish = Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]


@dataclass
class Recipe:
    """What a converter found out cheaply, and the costly part (``convert``) for the cache."""

    finish: Finish
    convert: Callable[[], Ensemble]
    finite_only: bool
    """Refuse NaN and infinity: the framework raises (or has its own missing-value rule)."""
    reject_inf: bool = False
    """Refuse infinity but take NaN (a missing value)."""
    what: str = ""
    """The model's kind, for messages."""
    zero_below: float | None = None
    """Read values with ``abs(x) <= zero_below`` as 0.0 (LightGBM drops them as zeros)."""
    reference: Callable[[np.ndarray[Any, Any]], Any] | None = None
    """The framework's own method: checked against the evaluator on probe rows before
    the evaluator is trusted (once, when the cache is built)."""
    tolerance: float = 1e-6
    """Largest absolute difference allowed on floating outputs; labels must be identical."""
    spec: FinishSpec | None = None
    """``finish`` as data (``_finish``), when it is that: saved with the arrays, so a load
    from the cache alone answers without the estimator."""
    n_features: int | None = None
    """The estimator's ``n_features_in_`` (with ``spec``)."""
    feature_names: list[str] | None = None
    """The estimator's ``feature_names_in_`` as strings (with ``spec``)."""


@dataclass
class TreeModel:
    ensemble: Ensemble
    recipe: Recipe
