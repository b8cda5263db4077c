"""``batch._ray.prepare_tree_cache``: the Ray driver completes a tree ensemble's compiled
cache before the actors start, and costs nothing for a complete cache or another model
(no scikit-learn import in the driver). Needs no Ray: it runs before any connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import shipyard

X, Y = make_classification(n_samples=200, n_features=5, random_state=0)

_CHILD = """
import json, sys
from shipyard.batch._ray import prepare_tree_cache
from shipyard.batch._worker import WorkerSpec
prepare_tree_cache(WorkerSpec(sys.argv[1], None, "auto", 1, trust={"trusted": False}))
print(json.dumps("sklearn" in sys.modules))
"""


def _prepare(model_dir: Path) -> bool:
    """Run it in a fresh process; whether that imported scikit-learn."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    imported: bool = json.loads(done.stdout.strip().splitlines()[-1])
    return imported


def _finish_files(model_dir: Path) -> list[Path]:
    return sorted((model_dir / ".shipyard" / "trees").glob("finish-*.json"))


def test_the_driver_completes_a_forest_s_cache_once(tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y)
    model_dir = shipyard.save_model(model, tmp_path / "rf")
    # A cache from before the finish file existed: arrays and kernel only.
    for path in _finish_files(model_dir):
        path.unlink()
    assert _prepare(model_dir) is True  # loaded in full, once, to complete it
    assert len(_finish_files(model_dir)) == 1
    assert _prepare(model_dir) is False  # complete: only checked


def test_the_driver_leaves_other_models_to_the_actors(tmp_path: Path) -> None:
    model_dir = shipyard.save_model(LogisticRegression().fit(X, Y), tmp_path / "lr")
    assert _prepare(model_dir) is False
    assert not (model_dir / ".shipyard").exists()
