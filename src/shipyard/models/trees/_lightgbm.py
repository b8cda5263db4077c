"""LightGBM Boosters, converted from ``dump_model()`` (thresholds printed to round-trip).

LightGBM compares float64 features with float64 thresholds, ``x <= t`` goes left, and
sums the trees' float64 leaf values in tree order; a NaN goes the default way when the
split's missing type is NaN and is read as 0.0 when it is None (a fixed direction per
node, worked out here). Zero-as-missing, categorical and linear trees stay with
LightGBM, and the result is checked against the booster itself before use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shipyard.models.trees._ensemble import Ensemble, Tree, Unsupported, build
from shipyard.models.trees._model import Recipe

__all__ = ["lightgbm_recipe"]


def _tree(structure: dict[str, Any], group: int) -> Tree:
    left: list[int] = []
    right: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    nan_left: list[bool] = []
    value: list[float] = []

    def add(node: dict[str, Any]) -> int:
        i = len(left)
        left.append(-1)
        right.append(-1)
        feature.append(0)
        threshold.append(0.0)
        nan_left.append(True)
        value.append(0.0)
        if "leaf_value" in node or "split_feature" not in node:
            if "leaf_coeff" in node:
                raise Unsupported("linear trees")
            value[i] = float(node.get("leaf_value", 0.0))
            return i
        if node.get("decision_type") != "<=":
            raise Unsupported("categorical splits")
        missing = node.get("missing_type", "None")
        t = float(node["threshold"])
        if abs(t) >= 1e300:
            t = math.copysign(math.inf, t)  # LightGBM writes an infinite threshold as 1e300
        if missing == "NaN":
            nan_left[i] = bool(node.get("default_left", False))
        elif missing == "None":
            nan_left[i] = t >= 0.0  # LightGBM reads NaN as 0.0 here
        else:
            raise Unsupported("zero-as-missing splits")
        feature[i] = int(node["split_feature"])
        threshold[i] = t
        left[i] = add(node["left_child"])
        right[i] = add(node["right_child"])
        return i

    add(structure)
    return Tree(
        left=np.asarray(left, dtype=np.int64),
        right=np.asarray(right, dtype=np.int64),
        feature=np.asarray(feature, dtype=np.int64),
        threshold=np.asarray(threshold, dtype=np.float64),
        nan_left=np.asarray(nan_left, dtype=bool),
        value=np.asarray(value, dtype=np.float64).reshape(-1, 1),
        group=group,
    )


def lightgbm_recipe(booster: Any, method: str) -> Recipe:
    if method != "predict":
        raise Unsupported(f"method {method!r}")
    if type(booster).__name__ != "Booster":
        raise Unsupported(f"{type(booster).__name__} (only Boosters)")
    dump = booster.dump_model()
    if dump.get("average_output"):
        raise Unsupported("random-forest mode (average_output)")
    objective = str(dump.get("objective", "")).split()
    name = objective[0] if objective else ""
    opts = dict(o.split(":", 1) for o in objective[1:] if ":" in o)
    per_iter = int(dump["num_tree_per_iteration"])
    n_class = int(dump["num_class"])
    if name in ("regression", "regression_l1", "huber", "fair", "quantile", "mape"):
        if "sqrt" in objective:
            raise Unsupported("regression with sqrt")
        link = "identity"
    elif name == "binary":
        link = "sigmoid"
        sigmoid = float(opts.get("sigmoid", "1"))
    elif name in ("multiclass", "multiclassova"):
        if name == "multiclassova":
            raise Unsupported("multiclassova")
        link = "softmax"
    else:
        raise Unsupported(f"the objective {name or 'custom'!r}")
    if n_class != per_iter:
        raise Unsupported("trees per iteration differ from the class count")
    n_features = int(dump["max_feature_idx"]) + 1

    def convert() -> Ensemble:
        trees = [
            _tree(info["tree_structure"], i % per_iter) for i, info in enumerate(dump["tree_info"])
        ]
        if any(int(info.get("num_cat", 0)) for info in dump["tree_info"]):
            raise Unsupported("categorical splits")
        return build(trees, n_features, np.zeros(per_iter), input32=False, acc32=False)

    def finish(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if link == "sigmoid":
            return np.asarray(1.0 / (1.0 + np.exp(-sigmoid * raw[:, 0])))
        if link == "softmax":
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            return np.asarray(e / e.sum(axis=1, keepdims=True))
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def reference(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(booster.predict(x, num_threads=1))

    return Recipe(
        finish,
        convert,
        finite_only=False,
        what=f"LightGBM {name}",
        # LightGBM's dense-row reader keeps a value only if fabs(x) > kZeroThreshold
        # (1e-35f); smaller ones are zeros to its trees.
        zero_below=float(np.float32(1e-35)),
        reference=reference,
        tolerance=1e-6,
    )
