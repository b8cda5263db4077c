"""scikit-learn forests and gradient boosting, converted to the kernel's arrays.

Each converter reproduces the framework's arithmetic, not just its idea: the same
float32 rounding of features (``DecisionTree*``, ``GradientBoosting*``) or float64
(``HistGradientBoosting*``), the same per-row summation order, the same final steps
(the forest's division, the boosting's own loss object for probabilities), so labels
are identical and numbers equal to the last bit where the framework's order allows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from shipyard.models.trees._ensemble import Ensemble, Tree, Unsupported, build
from shipyard.models.trees._finish import FinishSpec, finish
from shipyard.models.trees._model import Recipe

__all__ = ["sklearn_recipe"]

_FOREST_CLF = ("RandomForestClassifier", "ExtraTreesClassifier")
_FOREST_REG = ("RandomForestRegressor", "ExtraTreesRegressor")
_GB = ("GradientBoostingClassifier", "GradientBoostingRegressor")
_HGB = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")


def _sklearn_class(est: Any) -> str | None:
    """The class name if ``est`` is exactly (not a subclass of) a supported estimator."""
    cls = type(est)
    if not cls.__module__.startswith("sklearn.ensemble."):
        return None
    name = cls.__name__
    return name if name in (*_FOREST_CLF, *_FOREST_REG, *_GB, *_HGB) else None


def _cart(tree_: Any, value: np.ndarray[Any, Any], group: int = 0) -> Tree:
    left = np.asarray(tree_.children_left, dtype=np.int64)
    missing = getattr(tree_, "missing_go_to_left", None)
    nan_left = np.asarray(missing, dtype=bool) if missing is not None else np.zeros(len(left), bool)
    return Tree(
        left=left,
        right=np.asarray(tree_.children_right, dtype=np.int64),
        feature=np.asarray(tree_.feature, dtype=np.int64),
        threshold=np.asarray(tree_.threshold, dtype=np.float64),
        nan_left=nan_left,
        value=value,
        group=group,
    )


def _forest(est: Any, name: str, method: str) -> Recipe:
    if est.n_outputs_ != 1:
        raise Unsupported("multi-output forests")
    n = len(est.estimators_)
    is_clf = name in _FOREST_CLF
    allowed = ("predict", "predict_proba") if is_clf else ("predict",)
    if method not in allowed:
        raise Unsupported(f"method {method!r}")
    classes = est.classes_ if is_clf else None

    def convert() -> Ensemble:
        trees = []
        for tree in est.estimators_:
            t = tree.tree_
            # DecisionTreeClassifier.predict_proba is tree_.predict(X)[:, :n_classes_].
            cols = est.n_classes_ if is_clf else 1
            trees.append(_cart(t, np.asarray(t.value[:, 0, :cols], dtype=np.float64)))
        width = int(est.n_classes_) if is_clf else 1
        return build(trees, int(est.n_features_in_), np.zeros(width), input32=True, acc32=False)

    spec = FinishSpec("forest", method, is_clf, classes=classes, divisor=n)
    return _recipe(est, spec, convert, finite_only=True, what=name)


def _gb(est: Any, name: str, method: str) -> Recipe:
    is_clf = name == "GradientBoostingClassifier"
    allowed = ("predict", "predict_proba", "decision_function") if is_clf else ("predict",)
    if method not in allowed:
        raise Unsupported(f"method {method!r}")
    init_ = est.init_
    if not (isinstance(init_, str) and init_ == "zero") and type(init_).__name__ not in (
        "DummyClassifier",
        "DummyRegressor",
    ):
        raise Unsupported(f"a custom init estimator ({type(init_).__name__})")

    def convert() -> Ensemble:
        # The prior of a Dummy init is the same for every row: ask the model for it.
        zeros = np.zeros((1, est.n_features_in_), dtype=np.float32)
        init = np.asarray(est._raw_predict_init(zeros)[0], dtype=np.float64)
        lr = est.learning_rate
        trees = []
        for stage in est.estimators_:
            for k, tree in enumerate(stage):
                t = tree.tree_
                # predict_stages: out[i, k] += scale * value[node]; the same IEEE product,
                # done once here.
                value = lr * np.asarray(t.value[:, 0, :1], dtype=np.float64)
                trees.append(_cart(t, value, group=k))
        return build(trees, int(est.n_features_in_), init, input32=True, acc32=False)

    return _recipe(est, _boosting_spec(est, method, is_clf, hist=False), convert, True, name)


def _boosting_spec(est: Any, method: str, is_clf: bool, *, hist: bool) -> FinishSpec:
    """The framework's own last steps on raw sums (its loss object, its label rule)."""
    link = type(est._loss.link).__name__
    return FinishSpec(
        "boosting",
        method,
        is_clf,
        classes=getattr(est, "classes_", None),
        hist=hist,
        link="identity" if link == "IdentityLink" else link,
    )


def _recipe(
    est: Any, spec: FinishSpec, convert: Callable[[], Ensemble], finite_only: bool, what: str
) -> Recipe:
    """One ``finish`` for every model (``_finish``), with what a load from the cache
    alone needs to answer without the estimator."""
    loss = getattr(est, "_loss", None) if spec.needs_loss else None
    names = getattr(est, "feature_names_in_", None)
    return Recipe(
        functools.partial(finish, spec, loss=loss),
        convert,
        finite_only=finite_only,
        what=what,
        spec=spec,
        n_features=int(est.n_features_in_),
        feature_names=None if names is None else [str(n) for n in names],
    )


def _hgb(est: Any, name: str, method: str) -> Recipe:
    is_clf = name == "HistGradientBoostingClassifier"
    allowed = ("predict", "predict_proba", "decision_function") if is_clf else ("predict",)
    if method not in allowed:
        raise Unsupported(f"method {method!r}")
    cats = getattr(est, "is_categorical_", None)
    if cats is not None and np.asarray(cats).any():
        raise Unsupported("categorical features")
    if getattr(est, "_preprocessor", None) is not None:
        raise Unsupported("a column preprocessor (categorical_features='from_dtype')")

    def convert() -> Ensemble:
        trees = []
        for iteration in est._predictors:
            for k, predictor in enumerate(iteration):
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    raise Unsupported("categorical splits")
                leaf = nodes["is_leaf"].astype(bool)
                trees.append(
                    Tree(
                        left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
                        right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
                        feature=nodes["feature_idx"].astype(np.int64),
                        threshold=nodes["num_threshold"].astype(np.float64),
                        nan_left=nodes["missing_go_to_left"].astype(bool),
                        value=nodes["value"].astype(np.float64).reshape(-1, 1),
                        group=k,
                    )
                )
        init = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
        return build(trees, int(est.n_features_in_), init, input32=False, acc32=False)

    return _recipe(est, _boosting_spec(est, method, is_clf, hist=True), convert, False, name)


def sklearn_recipe(est: Any, method: str) -> Recipe:
    """How to evaluate a fitted scikit-learn ensemble, or ``Unsupported`` saying why not."""
    name = _sklearn_class(est)
    if name is None:
        raise Unsupported(f"{type(est).__name__} is not a supported tree ensemble")
    if name in _FOREST_CLF or name in _FOREST_REG:
        return _forest(est, name, method)
    if name in _GB:
        return _gb(est, name, method)
    return _hgb(est, name, method)
