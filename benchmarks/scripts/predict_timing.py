"""In-process predict time of one row, per model (median of many calls), as JSON.

Usage: python predict_timing.py MODELS_DIR (holding rf/model.joblib and lr/model.joblib)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import joblib
import numpy as np

root = Path(sys.argv[1])
rows = np.asarray(json.loads((root / "expected.json").read_text())["rows"], dtype=np.float64)
result = {}
for name in ("rf", "lr"):
    model = joblib.load(root / name / "model.joblib")
    one = rows[:1]
    for _ in range(200):
        model.predict(one)
    samples = []
    for _ in range(2000):
        t0 = time.perf_counter()
        model.predict(one)
        samples.append(time.perf_counter() - t0)
    result[name] = {"predict_1row_ms": statistics.median(samples) * 1000}
    hundred = rows[:100]
    samples = []
    for _ in range(300):
        t0 = time.perf_counter()
        model.predict(hundred)
        samples.append(time.perf_counter() - t0)
    result[name]["predict_100rows_ms"] = statistics.median(samples) * 1000

# What a forest costs without scikit-learn's per-call machinery (joblib.Parallel, per-tree
# validation and config contexts): each tree's Cython predict, averaged. Same
# probabilities, bit for bit, as predict_proba in scikit-learn 1.9; shown as a bound for
# what a serving runtime could do with the same trees.
forest = joblib.load(root / "rf" / "model.joblib")


def direct(x: np.ndarray) -> np.ndarray:
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    acc = forest.estimators_[0].tree_.predict(x32).reshape(len(x), -1)
    for est in forest.estimators_[1:]:
        acc = acc + est.tree_.predict(x32).reshape(len(x), -1)
    return forest.classes_.take(np.argmax(acc, axis=1))


if (direct(rows) != forest.predict(rows)).any():
    raise SystemExit("direct tree path disagrees with predict")
for n, key in ((1, "direct_trees_1row_ms"), (100, "direct_trees_100rows_ms")):
    samples = []
    for _ in range(300):
        t0 = time.perf_counter()
        direct(rows[:n])
        samples.append(time.perf_counter() - t0)
    result["rf"][key] = statistics.median(samples) * 1000
print(json.dumps(result))
