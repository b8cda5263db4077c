"""A local copy of a remote model (a Kubernetes pod's /mnt/models) follows the trust rule
of the URI it was copied from (``origin``), in ``load_model`` and in ``shipyard serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shipyard.errors import UntrustedModelError
from shipyard.models import load_model, save_model
from shipyard.models._trust import content_sha256

X = np.random.default_rng(0).normal(size=(40, 3))
Y = (X[:, 0] > 0).astype(int)
ORIGIN = "s3://other-bucket/models/clf"


@pytest.fixture
def copy(home: Path, tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    return save_model(LogisticRegression().fit(X, Y), tmp_path / "mnt-models")


def test_a_copy_follows_its_origins_rule(copy: Path) -> None:
    assert load_model(copy).format == "sklearn"  # named locally: the user's decision
    with pytest.raises(UntrustedModelError, match=f"Refusing to load {ORIGIN}"):
        load_model(copy, origin=ORIGIN)
    assert load_model(copy, origin=ORIGIN, trusted=True).predict(X[:2]).shape == (2,)
    assert load_model(copy, origin=ORIGIN, sha256=content_sha256(copy)).format == "sklearn"


def test_serve_reads_the_pods_trust_decision_from_its_env(copy: Path) -> None:
    env = {
        **os.environ,
        "SHIPYARD_MODEL_ORIGIN": ORIGIN,
        "SHIPYARD_MODEL_TRUSTED": "false",
    }
    command = [sys.executable, "-m", "shipyard.cli.main", "serve", str(copy), "--http-port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"Refusing to load {ORIGIN}" in done.stdout + done.stderr
