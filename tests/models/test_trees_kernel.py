"""The kernel's exactness rules: float32 thresholds, and the vector walk against the scalar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier

import shipyard
from shipyard.models.trees import attach
from shipyard.models.trees._ensemble import Ensemble, floor32
from shipyard.models.trees._native import FLAGS_ENV, Kernel, library
from shipyard.models.trees._probe import probe_rows


def _adversarial_thresholds() -> np.ndarray[Any, Any]:
    """float64 thresholds where rounding to float32 goes wrong in every possible way."""
    rng = np.random.default_rng(3)
    f32 = np.concatenate(
        [
            rng.normal(size=300).astype(np.float32) * np.float32(10.0),
            np.array([0.0, -0.0, 1.0, -1.0, 0.1, -0.1, 1e-30, -1e-30], dtype=np.float32),
            np.array([1e-45, -1e-45, 1.2e-38, 3.4e38, -3.4e38], dtype=np.float32),  # subnormal
            np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max], dtype=np.float32),
        ]
    )
    with np.errstate(over="ignore"):  # the float32 above max is inf: a midpoint of inf
        up = np.nextafter(f32, np.float32(np.inf))
    exact = f32.astype(np.float64)
    # Midpoints between adjacent float32 (round-to-nearest-even ties), and float64 values
    # one float64 ulp on either side of a float32 and of those midpoints.
    mid = (exact + up.astype(np.float64)) / 2
    mid = mid[np.isfinite(mid)]
    parts = [exact, mid]
    for p in (exact, mid):
        parts += [np.nextafter(p, np.inf), np.nextafter(p, -np.inf)]
    big = np.array([1e39, -1e39, 1e300, -1e300, np.inf, -np.inf, 3.4028235677973366e38])
    return np.concatenate([*parts, big])


def test_floor32_decides_exactly_as_float64() -> None:
    """For float32 x: x <= t (in float64) iff x <= floor32(t) (in float32), on values
    chosen so that a rounded threshold would flip decisions."""
    t = _adversarial_thresholds()
    t32 = floor32(t)
    assert t32.dtype == np.float32
    with np.errstate(over="ignore"):
        near = t.astype(np.float32)  # the naive conversion, to show the values are adversarial
        xs = np.unique(
            np.concatenate(
                [
                    near,
                    np.nextafter(near, np.float32(np.inf)),
                    np.nextafter(near, np.float32(-np.inf)),
                    np.array([np.inf, -np.inf, 0.0, -0.0], dtype=np.float32),
                ]
            )
        )
    xs = xs[~np.isnan(xs)]
    truth = xs.astype(np.float64)[:, None] <= t[None, :]
    np.testing.assert_array_equal(xs[:, None] <= t32[None, :], truth)
    naive_wrong = int(np.count_nonzero((xs[:, None] <= near[None, :]) != truth))
    assert naive_wrong > 0  # rounding to nearest would have flipped these


def _kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Kernel, Kernel]:
    """The default build (vector walk where the CPU has AVX-512) and a scalar-only one."""
    default = Kernel(library(tmp_path / "default"))
    if not default.vector:
        pytest.skip("this CPU has no AVX-512: the kernel has only its scalar walk")
    monkeypatch.setenv(FLAGS_ENV, "-mno-avx512f")
    scalar = Kernel(library(tmp_path / "scalar"))
    monkeypatch.delenv(FLAGS_ENV)
    assert not scalar.vector
    return default, scalar


def _same_sums(default: Kernel, scalar: Kernel, ens: Ensemble, x: Any, nan: bool) -> None:
    """Random rows, then rows on and beside every threshold (where a wrong comparison
    shows), cut at block boundaries."""
    dtype = np.float32 if ens.input32 else np.float64
    x = np.concatenate([x, probe_rows(ens, nan=False)])
    for n in (1, 15, 40, 127, 128, 129, 255, 256, 257, 700, len(x)):
        rows = np.ascontiguousarray(x[:n], dtype=dtype)
        a, b = default.run(ens, rows, nan), scalar.run(ens, rows, nan)
        assert a.tobytes() == b.tobytes(), f"{n} rows"


def test_vector_walk_gives_the_scalar_sums_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default, scalar = _kernels(tmp_path, monkeypatch)
    x, y = make_classification(n_samples=800, n_features=20, random_state=1)
    rows = np.random.default_rng(5).normal(size=(700, 20)) * 2
    models: list[Any] = [
        RandomForestClassifier(n_estimators=12, max_depth=8, random_state=0).fit(x, y),
        RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0).fit(x, y),
        GradientBoostingRegressor(n_estimators=15, max_depth=6, random_state=0).fit(x, y),
    ]
    for i, model in enumerate(models):
        path = tmp_path / f"m{i}.joblib"
        path.write_bytes(b"model %d" % i)  # the cache is keyed by the file's hash
        evaluator, note = attach(model, "predict", path)
        assert evaluator is not None, note
        assert evaluator.ensemble.perfect and evaluator.ensemble.input32
        _same_sums(default, scalar, evaluator.ensemble, rows, nan=False)


def test_xgboost_rows_with_and_without_missing_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks without NaN take the vector walk, blocks with one the scalar walk; both
    agree with XGBoost, and with each other."""
    xgb = pytest.importorskip("xgboost")
    x, y = make_classification(n_samples=800, n_features=12, random_state=2)
    x[np.random.default_rng(0).random(x.shape) < 0.05] = np.nan
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 7, "nthread": 1},
        xgb.DMatrix(x, y),
        num_boost_round=20,
    )
    path = shipyard.save_model(booster, tmp_path / "xgb")
    loaded = shipyard.load_model(path)
    rows = np.random.default_rng(6).normal(size=(700, 12)) * 2
    rows[300:310, 4] = np.nan  # only the second block of 256 rows has missing values
    ours = np.asarray(loaded.predict(rows))
    assert float(np.max(np.abs(ours - booster.inplace_predict(rows)))) <= 1e-6
    default, scalar = _kernels(tmp_path, monkeypatch)
    predictor: Any = loaded.predictor  # the XGBoost runtime, carrying its evaluator
    _same_sums(default, scalar, predictor._trees.ensemble, rows, nan=True)
