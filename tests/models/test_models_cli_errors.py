"""`shipyard model predict` failures a user can fix read as one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.models import save_model

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]  # the run_cli fixture (conftest)

REFUSER = textwrap.dedent(
    """
    import numpy as np

    from shipyard.models import Predictor


    class Refuser(Predictor):
        def predict(self, inputs):
            values = np.asarray(inputs, dtype=float)
            if (values < 0).any():
                raise ValueError("the model refuses negative numbers")
            return values.sum(axis=1)
    """
)


def test_a_predictor_exception_is_one_line(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "refuser.py").write_text(REFUSER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import refuser

    path = save_model(None, tmp_path / "refuse", predictor=refuser.Refuser, name="refuse")
    ok = run_cli("model", "predict", str(path), "--data", "[[1, 2]]")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["predictions"] == [3.0]
    bad = run_cli("model", "predict", str(path), "--data", "[[1, -2]]")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "Error: The predictor of model 'refuse' raised ValueError: the model refuses negative "
        "numbers (run with --debug for the traceback)"
    ]
    debug = run_cli("--debug", "model", "predict", str(path), "--data", "[[1, -2]]")
    assert "Traceback" in debug.stderr and "refuser.py" in debug.stderr


@pytest.fixture(scope="module")
def frame_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn model fitted on a DataFrame (so it needs pandas to predict)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    train = pd.DataFrame(rng.random((40, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(train, (train["a"] > 0.5).astype(int))
    path = tmp_path_factory.mktemp("frame") / "frame-model"
    return save_model(model, path, input_example=train.head(2), name="frame")


@pytest.mark.parametrize(
    ("blocked", "package", "extra"),
    [
        (("sklearn", "joblib", "skops"), "joblib", "sklearn"),
        (("pandas",), "pandas", "batch"),
    ],
)
def test_missing_extras_give_install_advice(
    frame_model: Path, run_cli: RunCli, blocked: tuple[str, ...], package: str, extra: str
) -> None:
    for args in (("--example",), ("--data", "[[0.9, 0.1, 0.2]]")):
        done = run_cli("model", "predict", str(frame_model), *args, blocked=blocked)
        assert done.returncode == 1, done.stdout
        lines: list[Any] = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"Error: The package '{package}' is needed")
        assert lines[0].endswith(f"pip install 'shipyard[{extra}]'")
    # Without the blocker the same command predicts: the missing package was the cause.
    assert run_cli("model", "predict", str(frame_model), "--example").returncode == 0
