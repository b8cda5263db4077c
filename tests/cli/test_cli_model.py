"""``shipyard model inspect|predict``, run as a real CLI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.models import save_model


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "model", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, np.ndarray[Any, Any]]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    clf = LogisticRegression().fit(x, y)
    root = tmp_path_factory.mktemp("cli")
    path = save_model(clf, root / "churn", input_example=x[:2], name="churn", version="2")
    return path, clf, x


def test_inspect_json(model_dir: Any, tmp_path: Path) -> None:
    path, _, _ = model_dir
    proc = _cli("inspect", str(path), "--output", "json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["name"], info["version"], info["format"]) == ("churn", "2", "sklearn")
    assert info["inputs"][0]["shape"] == [-1, 3]
    assert info["outputs"][0]["datatype"] == "INT64"
    assert any(r.startswith("scikit-learn==") for r in info["requirements"])


def test_inspect_table(model_dir: Any, tmp_path: Path) -> None:
    path, _, _ = model_dir
    proc = _cli("inspect", str(path), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "model churn" in proc.stdout and "input-0" in proc.stdout and "FP64" in proc.stdout


def test_predict_with_data_and_example(model_dir: Any, tmp_path: Path) -> None:
    path, clf, x = model_dir
    rows = x[:4].tolist()
    proc = _cli("predict", str(path), "--data", json.dumps(rows), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "model": "churn",
        "predictions": clf.predict(np.asarray(rows)).tolist(),
    }
    data_file = tmp_path / "rows.json"
    data_file.write_text(json.dumps(rows))
    proc = _cli(
        "predict", str(path), "--data", f"@{data_file}", "--method", "predict_proba", home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(
        json.loads(proc.stdout)["predictions"], clf.predict_proba(np.asarray(rows))
    )
    proc = _cli("predict", str(path), "--example", home=tmp_path)
    assert json.loads(proc.stdout)["predictions"] == clf.predict(x[:2]).tolist()


def test_predict_bad_input_is_one_line_with_the_reason(model_dir: Any, tmp_path: Path) -> None:
    path, _, _ = model_dir
    proc = _cli("predict", str(path), "--data", "[[1, 2]]", home=tmp_path)
    assert proc.returncode != 0
    assert "Each row has 2 values; the model takes 3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_inspect_missing_model(tmp_path: Path) -> None:
    proc = _cli("inspect", str(tmp_path / "nope"), home=tmp_path)
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr


def test_describe_says_how_a_forest_predicts(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] > 0).astype(int)
    forest = save_model(RandomForestClassifier(n_estimators=3).fit(x, y), tmp_path / "rf")
    proc = _cli("describe", str(forest), "--output", "json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["engine"].startswith("compiled trees (shipyard-trees-")
    x[:, 1] = np.abs(x[:, 1] * 2).astype(int) % 3
    hgb = HistGradientBoostingClassifier(max_iter=3, categorical_features=[1]).fit(x, y)
    fallback = save_model(hgb, tmp_path / "hgb")
    proc = _cli("describe", str(fallback), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "framework predict" in proc.stdout and "categorical" in proc.stdout
