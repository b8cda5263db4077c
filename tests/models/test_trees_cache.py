"""The evaluator's cache next to the model, its fallbacks, and a property test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

import shipyard
from shipyard.models.trees import attach


def _engine(loaded: Any) -> Any:
    """The loaded runtime, which carries the evaluator (``_trees``) and its note."""
    return loaded.predictor


X, Y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)


def _save(path: Path, seed: int = 0) -> RandomForestClassifier:
    model = RandomForestClassifier(n_estimators=5, max_depth=5, random_state=seed).fit(X, Y)
    shipyard.save_model(model, path)
    return model


def _cache(model_dir: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in (model_dir / ".shipyard" / "trees").iterdir()}


def test_built_at_save_and_reused_at_load(tmp_path: Path) -> None:
    _save(tmp_path / "m")
    built = _cache(tmp_path / "m")
    assert sorted(n.split("-")[0] for n in built) == ["ensemble", "finish", "kernel"]
    shipyard.load_model(tmp_path / "m")
    assert _cache(tmp_path / "m") == built  # nothing rebuilt


def test_a_changed_model_rebuilds_its_arrays(tmp_path: Path) -> None:
    _save(tmp_path / "m", seed=0)
    before = _cache(tmp_path / "m")
    model = _save(tmp_path / "m2", seed=1)  # another model, copied over the first
    (tmp_path / "m" / "model.joblib").write_bytes((tmp_path / "m2" / "model.joblib").read_bytes())
    loaded = shipyard.load_model(tmp_path / "m")
    after = _cache(tmp_path / "m")
    new = set(after) - set(before)
    assert sorted(n.split("-")[0] for n in new) == ["ensemble", "finish"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_another_engine_version_rebuilds_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _save(tmp_path / "m")
    before = _cache(tmp_path / "m")
    # Extra compiler flags are part of the engine version, like a new kernel source.
    monkeypatch.setenv("SHIPYARD_TREES_CFLAGS", "-DSHIPYARD_TEST_REBUILD=1")
    loaded = shipyard.load_model(tmp_path / "m")
    new = set(_cache(tmp_path / "m")) - set(before)
    assert sorted(n.split("-")[0] for n in new) == ["ensemble", "finish", "kernel"]
    assert _engine(loaded)._trees is not None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_missing_compiler_falls_back_with_one_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with caplog.at_level(logging.WARNING, logger="shipyard.models.trees"):
        model = _save(tmp_path / "m")  # save_model does not fail either
        caplog.clear()
        loaded = shipyard.load_model(tmp_path / "m")
    assert _engine(loaded)._trees is None
    assert "not available" in _engine(loaded).engine_note
    assert len(caplog.records) == 1 and "no-such-cc" in caplog.records[0].getMessage()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_broken_compiler_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc: internal error' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    model = _save(tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m")
    assert _engine(loaded)._trees is None
    assert "internal error" in _engine(loaded).engine_note
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_TREES", "off")
    _save(tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m")
    assert _engine(loaded)._trees is None
    assert "SHIPYARD_TREES" in _engine(loaded).engine_note


# Random forests on random data, asked about random rows and about their own thresholds:
# scikit-learn rounds features to float32 and compares them with float64 thresholds, so
# rows on and beside each threshold are where a wrong rounding would show.
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    trees=st.integers(1, 8),
    depth=st.one_of(st.none(), st.integers(1, 14)),
    extra=st.booleans(),
    classes=st.integers(2, 4),
    scale=st.sampled_from([1e-3, 1.0, 1e4]),
)
def test_property_forests_match_sklearn(
    tmp_path: Path,
    seed: int,
    trees: int,
    depth: int | None,
    extra: bool,
    classes: int,
    scale: float,
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 5)) * scale
    x[:, 1] = np.round(x[:, 1])  # ties and repeated values
    y = rng.integers(0, classes, size=120)
    kind: Any = ExtraTreesClassifier if extra else RandomForestClassifier
    model = kind(n_estimators=trees, max_depth=depth, random_state=seed).fit(x, y)
    path = tmp_path / f"{seed}-{trees}-{depth}-{extra}-{classes}-{scale}.joblib"
    path.write_bytes(b"%d" % seed + repr((trees, depth, extra, classes, scale)).encode())
    for method in ("predict", "predict_proba"):
        evaluator, note = attach(model, method, path)
        assert evaluator is not None, note
        from shipyard.models.trees._probe import probe_rows

        rows = np.concatenate(
            [rng.normal(size=(200, 5)) * scale, probe_rows(evaluator.ensemble, nan=False)]
        )
        ours = evaluator.predict(rows)
        theirs = getattr(model, method)(rows)
        assert ours is not None
        if method == "predict":
            np.testing.assert_array_equal(ours, theirs)
        else:
            assert float(np.max(np.abs(ours - theirs))) <= 1e-6
