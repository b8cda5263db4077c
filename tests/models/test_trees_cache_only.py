"""``load_model(lazy=True)``: a tree ensemble from its compiled cache alone (no scikit-learn
import, no unpickling), the framework's answers, and the full load whenever the cache
cannot answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

import shipyard
from shipyard.errors import InvalidInputError, ModelLoadError

X, Y = make_classification(
    n_samples=400, n_features=6, n_informative=4, n_classes=3, random_state=0
)
XR, YR = make_regression(n_samples=400, n_features=6, random_state=0)
NAMES = np.array(["cat", "dog", "eel"], dtype=object)


def _cases() -> dict[str, tuple[Any, str]]:
    """name -> (fitted model, method): every kind the cache can answer alone."""
    small = {"n_estimators": 6, "max_depth": 5, "random_state": 0}
    return {
        "rf-int": (RandomForestClassifier(**small).fit(X, Y), "predict"),
        "rf-str": (RandomForestClassifier(**small).fit(X, NAMES[Y]), "predict"),
        "rf-proba": (RandomForestClassifier(**small).fit(X, Y), "predict_proba"),
        "et-str": (ExtraTreesClassifier(**small).fit(X, NAMES[Y]), "predict"),
        "rf-reg": (RandomForestRegressor(**small).fit(XR, YR), "predict"),
        "gb-str": (GradientBoostingClassifier(**small).fit(X, NAMES[Y]), "predict"),
        "gb-binary": (GradientBoostingClassifier(**small).fit(X, Y > 0), "predict"),
        "gb-decision": (GradientBoostingClassifier(**small).fit(X, Y), "decision_function"),
        "gb-reg": (GradientBoostingRegressor(**small).fit(XR, YR), "predict"),
        "hgb-int": (HistGradientBoostingClassifier(max_iter=5).fit(X, Y), "predict"),
        "hgb-reg": (HistGradientBoostingRegressor(max_iter=5).fit(XR, YR), "predict"),
    }


_CHILD = """
import json, sys
import numpy as np
from shipyard.models import load_model
out = {}
x = np.load(sys.argv[1])
for name, path in json.loads(sys.argv[2]).items():
    loaded = load_model(path, lazy=True)
    y = np.asarray(loaded.predict(x))
    out[name] = {"dtype": y.dtype.str, "values": y.tolist(),
                 "note": loaded.predictor.engine_note}
out["sklearn imported"] = any(m.split(".")[0] == "sklearn" for m in sys.modules)
print(json.dumps(out))
"""


def _child(x: np.ndarray[Any, Any], dirs: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "x.npy"), json.dumps(dirs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _runtime(loaded: Any) -> Any:
    return loaded.predictor


def _unpickled(loaded: Any) -> bool:
    """Whether the runtime holds the estimator (scikit-learn loaded, the file unpickled)."""
    return _runtime(loaded)._estimator is not None


def _same(got: dict[str, Any], want: np.ndarray[Any, Any]) -> None:
    values = np.asarray(got["values"], dtype=want.dtype)
    assert got["dtype"] == want.dtype.str  # labels keep their type: int, bool, str (object)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(values, want, rtol=0, atol=1e-6)
    else:
        assert values.tolist() == want.tolist()


def test_answers_from_the_cache_alone_without_importing_sklearn(tmp_path: Path) -> None:
    cases = _cases()
    dirs = {}
    for name, (model, method) in cases.items():
        dirs[name] = str(shipyard.save_model(model, tmp_path / name, method=method))
    rng = np.random.default_rng(1)
    x = np.vstack([X, rng.normal(size=(50, 6)) * 3])
    got = _child(x, dirs, tmp_path)
    assert got.pop("sklearn imported") is False
    for name, (model, method) in cases.items():
        assert "scikit-learn not loaded" in got[name]["note"], name
        _same(got[name], np.asarray(getattr(model, method)(x)))


def test_a_cache_of_another_model_file_is_not_used(tmp_path: Path) -> None:
    first = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y)
    second = RandomForestClassifier(n_estimators=4, random_state=1).fit(X, NAMES[Y])
    shipyard.save_model(first, tmp_path / "m")
    shipyard.save_model(second, tmp_path / "other")
    # The first model's cache stays; the file beside it is now another model's.
    (tmp_path / "m" / "model.joblib").write_bytes(
        (tmp_path / "other" / "model.joblib").read_bytes()
    )
    got = _child(X, {"m": str(tmp_path / "m")}, tmp_path)
    assert got["sklearn imported"] is True  # loaded in full (and its cache completed)
    assert "scikit-learn not loaded" not in got["m"]["note"]
    _same(got["m"], second.predict(X))
    again = _child(X, {"m": str(tmp_path / "m")}, tmp_path)
    assert again["sklearn imported"] is False
    _same(again["m"], second.predict(X))


@pytest.mark.parametrize("damage", ["finish", "ensemble", "kernel", "header"])
def test_a_damaged_or_missing_cache_file_means_a_full_load(tmp_path: Path, damage: str) -> None:
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, NAMES[Y])
    shipyard.save_model(model, tmp_path / "m")
    cache = tmp_path / "m" / ".shipyard" / "trees"
    if damage == "header":
        finish = next(cache.glob("finish-*.json"))
        header = json.loads(finish.read_text())
        header["model_hash"] = "0" * 16  # written for another model
        finish.write_text(json.dumps(header))
    else:
        target = next(cache.glob(f"{damage}-*"))
        if damage == "kernel":
            target.unlink()
        else:
            target.write_bytes(b"not what it was")
    loaded = shipyard.load_model(tmp_path / "m", lazy=True)
    assert _unpickled(loaded)  # the full load
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_an_engine_version_change_misses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = RandomForestRegressor(n_estimators=4, random_state=0).fit(XR, YR)
    shipyard.save_model(model, tmp_path / "m")
    monkeypatch.setenv("SHIPYARD_TREES_CFLAGS", "-DSHIPYARD_OTHER_BUILD")  # new engine version
    loaded = shipyard.load_model(tmp_path / "m", lazy=True)
    assert _unpickled(loaded)
    assert len(list((tmp_path / "m" / ".shipyard" / "trees").glob("finish-*"))) == 2


def test_an_input_the_trees_do_not_take_loads_the_framework_once(tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=6, random_state=0).fit(X, NAMES[Y])
    shipyard.save_model(model, tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m", lazy=True)
    predictor: Any = loaded.predictor
    assert predictor._estimator is None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert predictor._estimator is None  # the trees answered
    holes = X.copy()
    holes[::7, 2] = np.nan  # finite-only trees: NaN is scikit-learn's to decide
    np.testing.assert_array_equal(loaded.predict(holes), model.predict(holes))
    estimator = predictor._estimator
    assert estimator is not None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # trees again
    assert predictor._estimator is estimator  # loaded once


def test_frame_columns_the_trees_cannot_reorder_get_the_framework_s_answer(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(frame, Y)
    shipyard.save_model(model, tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m", lazy=True)
    assert _runtime(loaded).feature_names == list(frame.columns)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert not _unpickled(loaded)
    with pytest.raises(InvalidInputError, match="feature names"):
        loaded.predict(frame[frame.columns[::-1]])  # scikit-learn's refusal, as in full


def test_skops_files_always_load_in_full_with_their_type_check(tmp_path: Path) -> None:
    pytest.importorskip("skops")
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y)
    shipyard.save_model(model, tmp_path / "m", serialization="skops")
    assert list((tmp_path / "m" / ".shipyard" / "trees").glob("finish-*"))  # a full cache
    # The cache could answer, but a skops file's type check is its load: still refused.
    with pytest.raises(ModelLoadError, match="not trusted"):
        shipyard.load_model(tmp_path / "m", lazy=True)
    loaded = shipyard.load_model(tmp_path / "m", lazy=True, trusted_types=[_TREE])
    assert _unpickled(loaded)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


_TREE = "sklearn.tree._tree.Tree"


def test_a_remote_pickle_still_needs_trust_with_a_complete_cache(
    home: Path, tmp_path: Path, serve_folder: Callable[[Path], AbstractContextManager[str]]
) -> None:
    import hashlib

    from shipyard.errors import UntrustedModelError

    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y)
    saved = shipyard.save_model(model, tmp_path / "www" / "rf")
    with serve_folder(saved) as base:
        url = f"{base}/model.joblib"
        trusted = shipyard.load_model(url, trusted=True, lazy=True)  # fetched, cache built
        np.testing.assert_array_equal(trusted.predict(X), model.predict(X))
        again = shipyard.load_model(url, trusted=True, lazy=True)
        assert not _unpickled(again)  # the fetched copy's cache is complete now ...
        with pytest.raises(UntrustedModelError, match="--trust"):
            shipyard.load_model(url, lazy=True)  # ... and the pickle is still refused
        digest = hashlib.sha256((saved / "model.joblib").read_bytes()).hexdigest()
        pinned = shipyard.load_model(url, sha256=digest, lazy=True)
        np.testing.assert_array_equal(pinned.predict(X), model.predict(X))


def test_a_lazy_load_that_fails_is_a_model_load_error(tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y)
    shipyard.save_model(model, tmp_path / "m")
    loaded = shipyard.load_model(tmp_path / "m", lazy=True)
    (tmp_path / "m" / "model.joblib").write_bytes(b"gone")  # replaced after the load
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # the trees answer
    holes = X.copy()
    holes[0, 0] = np.nan
    # What the full load would have said at load time, not an error about these rows.
    with pytest.raises(ModelLoadError, match=r"model\.joblib"):
        loaded.predict(holes)
