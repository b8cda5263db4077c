"""Check an evaluator against the framework's own predict before trusting it.

Run once, when a model's cache is built: probe rows put every feature on each side of
every threshold it is split on (the values where a rounding mistake would flip a
decision), plus random rows and, where the model takes them, missing values. Labels
must be identical and numbers within the recipe's tolerance, else the framework keeps
predicting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shipyard.models.trees._ensemble import Ensemble, Unsupported

__all__ = ["compare", "probe_rows"]

PROBE_ROWS = 512


def probe_rows(ens: Ensemble, nan: bool, seed: int = 0) -> np.ndarray[Any, Any]:
    """Rows of float64 values on and next to the model's thresholds."""
    rng = np.random.default_rng(seed)
    feat = ens.nodes["feat"]
    feat = feat & 0x7FFFFFFF
    thr = ens.nodes["thr"]
    finite = np.isfinite(thr)
    x = rng.normal(size=(PROBE_ROWS, ens.n_features))
    for f in range(ens.n_features):
        t = np.unique(thr[finite & (feat == f)])
        if len(t) == 0:
            continue
        dtype = np.float32 if ens.input32 else np.float64
        t = t.astype(dtype)
        near = np.concatenate(
            [t, np.nextafter(t, dtype(np.inf)), np.nextafter(t, dtype(-np.inf))]
        ).astype(np.float64)
        pick = rng.random(PROBE_ROWS) < 0.8
        x[pick, f] = rng.choice(near, size=int(pick.sum()))
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x


def largest_difference(ours: Any, theirs: Any) -> float:
    """Largest absolute difference between two numeric outputs (inf when shapes differ)."""
    a = np.asarray(ours)
    b = np.asarray(theirs)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def compare(
    predict: Callable[[np.ndarray[Any, Any]], Any],
    reference: Callable[[np.ndarray[Any, Any]], Any],
    x: np.ndarray[Any, Any],
    tolerance: float,
) -> float:
    """The largest difference on ``x``; ``Unsupported`` if labels differ or numbers exceed
    ``tolerance``."""
    ours = np.asarray(predict(x))
    theirs = np.asarray(reference(x))
    if theirs.dtype.kind not in "fc":
        if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
            raise Unsupported("self-check failed: labels differ from the framework's")
        return 0.0
    diff = largest_difference(ours, theirs)
    if not diff <= tolerance:
        raise Unsupported(
            f"self-check failed: outputs differ from the framework's by up to {diff:.3g}"
        )
    return diff
