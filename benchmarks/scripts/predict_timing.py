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
print(json.dumps(result))
