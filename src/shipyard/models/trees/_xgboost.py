"""XGBoost Boosters (``gbtree``), converted from their JSON dump.

XGBoost rounds features to float32 and sends x left iff ``x < split`` (float32): for
float32 x that is ``x <= the float32 just below split``, the kernel's rule. Leaf values
are float32 and summed in float32 from the base margin, in tree order, as XGBoost's
CPU predictor does; the result is checked against the booster itself before use.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from shipyard.models.trees._ensemble import Ensemble, Tree, Unsupported, build
from shipyard.models.trees._model import Recipe

__all__ = ["xgboost_recipe"]

_IDENTITY = ("reg:squarederror", "reg:pseudohubererror", "reg:absoluteerror", "binary:logitraw")
_SIGMOID = ("binary:logistic", "reg:logistic")
_SOFTMAX = ("multi:softprob", "multi:softmax")


def _f32(values: list[Any]) -> np.ndarray[Any, Any]:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def _tree(raw: dict[str, Any], group: int) -> Tree:
    if any(raw.get("split_type", [])):
        raise Unsupported("categorical splits")
    if int(raw["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise Unsupported("multi-target trees")
    left = np.asarray(raw["left_children"], dtype=np.int64)
    split = _f32(raw["split_conditions"])
    # x < split  <=>  x <= nextafter(split, -inf), for float32 x.
    below = np.nextafter(split, np.float32(-np.inf)).astype(np.float64)
    return Tree(
        left=left,
        right=np.asarray(raw["right_children"], dtype=np.int64),
        feature=np.asarray(raw["split_indices"], dtype=np.int64),
        threshold=below,
        nan_left=np.asarray(raw["default_left"], dtype=bool),
        value=split.astype(np.float64).reshape(-1, 1),  # a leaf's value is its split_condition
        group=group,
    )


def _base_scores(param: dict[str, Any]) -> list[float]:
    return [float(v) for v in str(param["base_score"]).strip("[]").split(",")]


def xgboost_recipe(booster: Any, method: str) -> Recipe:
    if method not in ("predict", "inplace_predict"):
        raise Unsupported(f"method {method!r}")
    if type(booster).__name__ != "Booster":
        raise Unsupported(f"{type(booster).__name__} (only Boosters)")
    learner = json.loads(booster.save_raw("json"))["learner"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        raise Unsupported(f"the {gbm.get('name')!r} booster")
    objective = learner["objective"]["name"]
    if objective not in (*_IDENTITY, *_SIGMOID, *_SOFTMAX):
        raise Unsupported(f"the objective {objective!r}")
    param = learner["learner_model_param"]
    n_features = int(param["num_feature"])
    n_class = int(param.get("num_class", "0"))
    n_out = max(1, n_class)
    bases = _base_scores(param)
    if len(bases) == 1:
        bases = bases * n_out
    if len(bases) != n_out:
        raise Unsupported(f"{len(bases)} base scores for {n_out} outputs")
    if objective in _SIGMOID:
        if not all(0.0 < b < 1.0 for b in bases):
            raise Unsupported(f"base_score {bases} outside (0, 1)")
        # XGBoost keeps base_score as a probability; the margin starts at its logit.
        guess = [-math.log(1.0 / b - 1.0) for b in bases]
    else:
        guess = bases
    if objective in _SOFTMAX and n_class < 2:
        raise Unsupported("softmax without num_class")

    def convert() -> Ensemble:
        model = gbm["model"]
        groups = model["tree_info"]
        trees = [_tree(raw, int(g)) for raw, g in zip(model["trees"], groups, strict=True)]
        init = np.asarray(guess, dtype=np.float64).astype(np.float32).astype(np.float64)
        return build(trees, n_features, init, input32=True, acc32=True)

    def finish(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if objective in _SIGMOID:
            one = np.float32(1.0)
            return np.asarray(one / (one + np.exp(-raw[:, 0])), dtype=np.float32)
        if objective == "multi:softprob":
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)
        if objective == "multi:softmax":
            return np.asarray(np.argmax(raw, axis=1), dtype=np.float32)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def reference(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(booster.inplace_predict(x))

    return Recipe(
        finish,
        convert,
        finite_only=False,
        reject_inf=True,
        what=f"XGBoost {objective}",
        reference=reference,
        tolerance=1e-6,
    )
