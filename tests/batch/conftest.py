"""Fixtures for batch inference: small models saved with save_model, a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_helpers import FEATURES, RunCli, make_frame


@pytest.fixture(autouse=True)
def shipyard_home(home: Path) -> Path:
    """Every test gets its own SHIPYARD_HOME (see tests/conftest.py), so model caches
    and servers never leak between tests."""
    return home


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(make_frame(1000))


@pytest.fixture(scope="session")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LogisticRegression fitted on a DataFrame: its signature names columns a-d."""
    from sklearn.linear_model import LogisticRegression

    from shipyard.models import save_model

    train = make_frame(300, seed=1)
    y = (train["a"] + train["b"] > 1.0).astype(int)
    model = LogisticRegression().fit(train[FEATURES], y)
    path = tmp_path_factory.mktemp("models") / "logreg"
    save_model(model, path, input_example=train[FEATURES].head(3), name="logreg")
    return path


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run ``shipyard ...`` in a real child process; returns the completed process."""

    def run(*args: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> Any:
        import os

        return subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            check=False,
        )

    return run
