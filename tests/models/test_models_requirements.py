"""Saved requirements name every framework a pickled model needs, with its version."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from shipyard.models import MANIFEST_FILE, save_model


def _wrapped(framework: str) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(0).random((60, 3))
    y = (x[:, 0] > 0.5).astype(int)
    if framework == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        estimator = lgb.LGBMClassifier(n_estimators=5, verbose=-1)
    else:
        xgb = pytest.importorskip("xgboost")
        estimator = xgb.XGBClassifier(n_estimators=5)
    return make_pipeline(StandardScaler(), estimator).fit(x, y)


@pytest.mark.parametrize("framework", ["lightgbm", "xgboost"])
def test_sklearn_style_wrappers_record_their_framework(tmp_path: Path, framework: str) -> None:
    path = save_model(_wrapped(framework), tmp_path / "model")
    requirements = yaml.safe_load((path / MANIFEST_FILE).read_text())["requirements"]
    dist = metadata.packages_distributions()[framework][0]
    assert f"{dist}=={metadata.version(dist)}" in requirements
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in requirements
    assert f"numpy=={metadata.version('numpy')}" in requirements
    assert not [r for r in requirements if r.startswith("shipyard")]


@pytest.mark.parametrize("dump", ["pickle", "joblib", "joblib-compressed"])
def test_a_pickled_file_records_its_framework_too(tmp_path: Path, dump: str) -> None:
    # Saving the user's own .pkl/.joblib file (not the object) recorded scikit-learn only:
    # the file's classes were never looked at.
    import pickle

    import joblib

    model = _wrapped("lightgbm")
    file = tmp_path / ("model.pkl" if dump == "pickle" else "model.joblib")
    if dump == "pickle":
        file.write_bytes(pickle.dumps(model))
    else:
        joblib.dump(model, file, compress=3 if dump == "joblib-compressed" else 0)
    path = save_model(file, tmp_path / "model")
    requirements = yaml.safe_load((path / MANIFEST_FILE).read_text())["requirements"]
    assert f"lightgbm=={metadata.version('lightgbm')}" in requirements
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in requirements
    assert f"numpy=={metadata.version('numpy')}" in requirements


class _Runs:
    """Unpickling this calls os.system: a file that runs code when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        import os

        return os.system, (f"touch {self.marker}",)


def test_reading_a_files_requirements_runs_none_of_its_code(tmp_path: Path) -> None:
    import pickle

    from shipyard.models._requirements import pickled_file_requirements

    marker = tmp_path / "ran"
    file = tmp_path / "evil.pkl"
    file.write_bytes(pickle.dumps({"model": _wrapped("lightgbm"), "hook": _Runs(marker)}))
    pins = pickled_file_requirements(file)
    assert f"lightgbm=={metadata.version('lightgbm')}" in pins
    assert not marker.exists()
