"""The direct forest path gives exactly what scikit-learn gives, and steps aside otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

import shipyard
from shipyard.errors import InvalidInputError
from shipyard.models.runtimes._forest import SMALL_BATCH_ROWS, forest_fast_path

X_CLS, Y_CLS = make_classification(
    n_samples=400, n_features=8, n_informative=5, n_classes=3, random_state=0
)
X_REG, Y_REG = make_regression(n_samples=400, n_features=8, random_state=0)
ROWS = np.random.default_rng(1).normal(size=(300, 8)) * 3


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_classifiers_match_sklearn_exactly(kind: Any, method: str) -> None:
    model = kind(n_estimators=25, max_depth=6, random_state=0).fit(X_CLS, Y_CLS)
    fast = forest_fast_path(model, method)
    assert fast is not None
    for n in (1, 7, 300):
        got = fast(ROWS[:n])
        assert got is not None
        np.testing.assert_array_equal(got, getattr(model, method)(ROWS[:n]))


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressors_match_sklearn_exactly(kind: Any) -> None:
    model = kind(n_estimators=20, max_depth=6, random_state=0).fit(X_REG, Y_REG)
    fast = forest_fast_path(model, "predict")
    assert fast is not None
    got = fast(ROWS[:50])
    assert got is not None
    np.testing.assert_array_equal(got, model.predict(ROWS[:50]))


def test_string_labels_come_back_as_labels() -> None:
    labels = np.array(["cat", "dog", "owl"])[Y_CLS]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_CLS, labels)
    fast = forest_fast_path(model, "predict")
    assert fast is not None
    got = fast(ROWS[:20])
    assert got is not None
    np.testing.assert_array_equal(got, model.predict(ROWS[:20]))


def test_inputs_it_does_not_handle_go_back_to_sklearn() -> None:
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_CLS, Y_CLS)
    fast = forest_fast_path(model, "predict")
    assert fast is not None
    nan_row = ROWS[:1].copy()
    nan_row[0, 3] = np.nan
    too_big = np.full((1, 8), 1e300)  # infinite once converted to float32
    big_batch = np.zeros((SMALL_BATCH_ROWS + 1, 8))
    for x in (nan_row, too_big, big_batch, ROWS[:3, :5], ROWS[:3].astype(object)):
        assert fast(x) is None
    # Methods, estimators and subclasses it does not know are not taken over at all.
    assert forest_fast_path(model, "apply") is None

    class Custom(RandomForestClassifier):  # type: ignore[misc]
        pass

    assert forest_fast_path(Custom(n_estimators=3).fit(X_CLS, Y_CLS), "predict") is None
    assert forest_fast_path(object(), "predict") is None


def test_served_forest_keeps_sklearn_errors_and_answers(tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_CLS, Y_CLS)
    shipyard.save_model(model, tmp_path / "rf", input_example=X_CLS[:2])
    loaded = shipyard.load_model(tmp_path / "rf")
    np.testing.assert_array_equal(loaded.predictor.predict(ROWS[:5]), model.predict(ROWS[:5]))
    with pytest.raises(InvalidInputError, match="infinity"):
        loaded.predictor.predict(np.full((1, 8), np.inf))


def test_the_sklearn_extra_pins_what_the_fast_path_needs() -> None:
    # Older scikit-learn stores weighted counts in tree values: the fast path would
    # return other numbers than sklearn does, so the extra must not allow it.
    import tomllib

    from packaging.requirements import Requirement

    from shipyard.models.runtimes._forest import MIN_SKLEARN

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    [pin] = [Requirement(r) for r in extras["sklearn"] if r.startswith("scikit-learn")]
    oldest = ".".join(map(str, MIN_SKLEARN))
    assert oldest in pin.specifier
    assert "1.4.0" not in pin.specifier and "1.3.2" not in pin.specifier


@pytest.mark.parametrize(
    ("version", "fast"),
    [("1.3.2", False), ("1.4.0", False), ("1.4.1", True), ("1.5.0rc1", True), ("2.0", True)],
)
def test_an_older_sklearn_found_at_load_gets_no_fast_path(
    version: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn

    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X_CLS, Y_CLS)
    monkeypatch.setattr(sklearn, "__version__", version)
    assert (forest_fast_path(model, "predict_proba") is not None) is fast
