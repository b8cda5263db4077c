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
