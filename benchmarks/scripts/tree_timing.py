"""Per-row cost of the compiled tree evaluator against each framework's own predict.

Usage: python tree_timing.py MODELS_DIR WORK_DIR ROWS
Both sides single-threaded, on the same 100k-row batch, in interleaved rounds (median).
The RF is the bench model (joblib); the XGBoost and LightGBM boosters are trained here
at a similar size (50 trees, depth 8) on the same data. Prints one JSON document.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import joblib  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

import shipyard  # noqa: E402
from shipyard.models.trees._probe import largest_difference, probe_rows  # noqa: E402

models_dir, work, n_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
rows = np.random.default_rng(7).normal(size=(n_rows, 20)) * 1.5
ROUNDS = 7


def loadavg() -> float:
    return float(open("/proc/loadavg").read().split()[0])


def measure(name: str, framework, loaded) -> dict[str, object]:  # type: ignore[no-untyped-def]
    ours_fn = loaded.predict
    theirs, ours = [], []
    for i in range(ROUNDS):
        for which in (0, 1) if i % 2 else (1, 0):
            t0 = time.perf_counter()
            (framework if which == 0 else ours_fn)(rows)
            (theirs if which == 0 else ours).append(time.perf_counter() - t0)
    a, b = np.asarray(ours_fn(rows)), np.asarray(framework(rows))
    edges = probe_rows(loaded.predictor._trees.ensemble, nan=False)
    a2, b2 = np.asarray(ours_fn(edges)), np.asarray(framework(edges))
    labels = b.dtype.kind not in "fc"
    return {
        "model": name,
        "engine": loaded.predictor.engine_note,
        "rows": n_rows,
        "framework_us_per_row": 1e6 * statistics.median(theirs) / n_rows,
        "ours_us_per_row": 1e6 * statistics.median(ours) / n_rows,
        "ratio": statistics.median(theirs) / statistics.median(ours),
        "labels_identical": bool(np.array_equal(a, b) and np.array_equal(a2, b2))
        if labels
        else None,
        "largest_difference": None
        if labels
        else max(largest_difference(a, b), largest_difference(a2, b2)),
        "loadavg_1m": loadavg(),
    }


out = []
rf = joblib.load(os.path.join(models_dir, "joblib", "rf", "model.joblib"))
rf.set_params(n_jobs=1)
loaded = shipyard.load_model(os.path.join(models_dir, "shipyard", "rf"))
out.append(measure("bench RandomForestClassifier (50 trees, depth 8), predict", rf.predict, loaded))
proba = shipyard.load_model(os.path.join(models_dir, "shipyard", "rf"), method="predict_proba")
out.append(measure("same, predict_proba", rf.predict_proba, proba))

import xgboost as xgb  # noqa: E402

booster = xgb.train(
    {"objective": "binary:logistic", "max_depth": 8, "nthread": 1},
    xgb.DMatrix(X, y),
    num_boost_round=50,
)
path = shipyard.save_model(booster, os.path.join(work, "xgb"), overwrite=True)
loaded = shipyard.load_model(path)
out.append(measure("XGBoost binary:logistic (50 trees, depth 8)", booster.inplace_predict, loaded))

import lightgbm as lgb  # noqa: E402

lbooster = lgb.train(
    {"objective": "binary", "max_depth": 8, "num_leaves": 255, "verbose": -1, "num_threads": 1},
    lgb.Dataset(X, y),
    num_boost_round=50,
)
path = shipyard.save_model(lbooster, os.path.join(work, "lgb"), overwrite=True)
reloaded = lgb.Booster(model_file=os.path.join(path, "model.txt"))
loaded = shipyard.load_model(path)
out.append(
    measure(
        "LightGBM binary (50 trees, depth 8)",
        lambda r: reloaded.predict(r, num_threads=1),
        loaded,
    )
)
print(json.dumps(out))
