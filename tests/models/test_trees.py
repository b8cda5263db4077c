"""The compiled tree evaluator answers exactly as each framework does, or steps aside."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

import shipyard
from shipyard.models.trees._probe import largest_difference, probe_rows


def _engine(loaded: Any) -> Any:
    """The loaded runtime, which carries the evaluator (``_trees``) and its note."""
    return loaded.predictor


X_CLS, Y_CLS = make_classification(
    n_samples=600, n_features=8, n_informative=5, n_classes=3, random_state=0
)
Y_BIN = (Y_CLS > 0).astype(int)
X_REG, Y_REG = make_regression(n_samples=600, n_features=8, random_state=0)
X_NAN = X_CLS.copy()
X_NAN[np.random.default_rng(4).random(X_NAN.shape) < 0.05] = np.nan


def _rows(nan: bool = False) -> np.ndarray[Any, Any]:
    rows = np.random.default_rng(1).normal(size=(700, 8)) * 3
    if nan:
        rows[np.random.default_rng(2).random(rows.shape) < 0.05] = np.nan
    return rows


def _check(loaded: Any, reference: Callable[[Any], Any], rows: Any) -> None:
    """Compiled, and equal to the framework: labels identical, numbers within 1e-6."""
    predictor = loaded.predictor
    assert predictor._trees is not None, predictor.engine_note
    assert predictor.engine_note.startswith("compiled trees")
    ours = np.asarray(loaded.predict(rows))
    theirs = np.asarray(reference(rows))
    assert ours.shape == theirs.shape
    if theirs.dtype.kind in "fc":
        assert largest_difference(ours, theirs) <= 1e-6
    else:
        np.testing.assert_array_equal(ours, theirs)


SKLEARN_MODELS: list[tuple[Any, str, Any, Any]] = [
    (RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0), "predict", X_CLS, Y_CLS),
    (RandomForestClassifier(n_estimators=20, random_state=0), "predict_proba", X_CLS, Y_CLS),
    (ExtraTreesClassifier(n_estimators=10, random_state=0), "predict", X_CLS, Y_CLS),
    (RandomForestRegressor(n_estimators=10, max_depth=7, random_state=0), "predict", X_REG, Y_REG),
    (ExtraTreesRegressor(n_estimators=10, random_state=0), "predict", X_REG, Y_REG),
    (GradientBoostingClassifier(n_estimators=20, random_state=0), "predict", X_CLS, Y_CLS),
    (GradientBoostingClassifier(n_estimators=20, random_state=0), "predict_proba", X_CLS, Y_BIN),
    (GradientBoostingClassifier(n_estimators=20, random_state=0), "predict", X_CLS, Y_BIN),
    (GradientBoostingRegressor(n_estimators=20, random_state=0), "predict", X_REG, Y_REG),
    (HistGradientBoostingClassifier(max_iter=20, random_state=0), "predict", X_NAN, Y_CLS),
    (HistGradientBoostingClassifier(max_iter=20, random_state=0), "predict_proba", X_NAN, Y_BIN),
    (HistGradientBoostingRegressor(max_iter=20, random_state=0), "predict", X_REG, Y_REG),
]


@pytest.mark.parametrize(("model", "method", "x", "y"), SKLEARN_MODELS)
def test_sklearn_ensembles_match(tmp_path: Path, model: Any, method: str, x: Any, y: Any) -> None:
    model.fit(x, y)
    shipyard.save_model(model, tmp_path / "m", method=method)
    loaded = shipyard.load_model(tmp_path / "m")
    nan = type(model).__name__.startswith("Hist")
    _check(loaded, getattr(model, method), _rows(nan))
    # The values where rounding would flip a decision: on and beside every threshold.
    edges = probe_rows(_engine(loaded)._trees.ensemble, nan=nan)
    _check(loaded, getattr(model, method), edges)


def test_string_labels_and_one_row(tmp_path: Path) -> None:
    labels = np.array(["cat", "dog", "owl"])[Y_CLS]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_CLS, labels)
    shipyard.save_model(model, tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m")
    _check(loaded, model.predict, _rows()[:1])
    _check(loaded, model.predict, _rows())


def test_non_finite_rows_go_to_sklearn(tmp_path: Path) -> None:
    """NaN in a forest's input: sklearn's own missing-value rule (or error), not ours."""
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_CLS, Y_CLS)
    shipyard.save_model(model, tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m")
    rows = _rows()[:3]
    rows[1, 2] = np.nan
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))


def test_xgboost_boosters_match(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    cases: list[tuple[dict[str, Any], Any, Any]] = [
        ({"objective": "binary:logistic"}, X_NAN, Y_BIN),
        ({"objective": "reg:squarederror"}, X_REG, Y_REG),
        ({"objective": "multi:softprob", "num_class": 3}, X_CLS, Y_CLS),
    ]
    for i, (params, x, y) in enumerate(cases):
        booster = xgb.train(
            {**params, "max_depth": 5, "nthread": 1}, xgb.DMatrix(x, y), num_boost_round=30
        )
        shipyard.save_model(booster, tmp_path / f"m{i}")
        loaded = shipyard.load_model(tmp_path / f"m{i}")
        _check(loaded, booster.inplace_predict, _rows(nan=True))


def test_lightgbm_boosters_match(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    cases: list[tuple[dict[str, Any], Any, Any]] = [
        ({"objective": "binary"}, X_NAN, Y_BIN),
        ({"objective": "regression"}, X_REG, Y_REG),
        ({"objective": "multiclass", "num_class": 3}, X_CLS, Y_CLS),
    ]
    for i, (params, x, y) in enumerate(cases):
        booster = lgb.train(
            {**params, "verbose": -1, "num_threads": 1}, lgb.Dataset(x, y), num_boost_round=30
        )
        shipyard.save_model(booster, tmp_path / f"m{i}")
        loaded = shipyard.load_model(tmp_path / f"m{i}")
        reloaded = lgb.Booster(model_file=str(tmp_path / f"m{i}" / "model.txt"))
        _check(loaded, partial(reloaded.predict, num_threads=1), _rows(nan=True))


def test_categorical_splits_fall_back_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x = X_CLS.copy()
    x[:, 0] = np.abs(x[:, 0] * 3).astype(int) % 5
    model = HistGradientBoostingClassifier(
        max_iter=10, categorical_features=[0], random_state=0
    ).fit(x, Y_CLS)
    shipyard.save_model(model, tmp_path / "m")
    caplog.clear()  # save_model said it once already
    with caplog.at_level(logging.WARNING, logger="shipyard.models.trees"):
        loaded = shipyard.load_model(tmp_path / "m")
    assert _engine(loaded)._trees is None
    assert "categorical" in _engine(loaded).engine_note
    assert len([r for r in caplog.records if "framework predict" in r.getMessage()]) == 1
    np.testing.assert_array_equal(loaded.predict(x[:50]), model.predict(x[:50]))


def test_other_models_are_left_alone(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X_CLS, Y_CLS)
    shipyard.save_model(model, tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m")
    assert _engine(loaded)._trees is None
    assert _engine(loaded).engine_note is None
