"""Model directories the serving tests share, written once per session with save_model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import serving_predictors as sp

from shipyard.models import Signature, TensorSpec, save_model
from shipyard.testing import ServerProcess, start_server

#: The shared server's body limit: small, so the 413 test sends little.
MAX_BODY = 1_000_000

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Imported here: the gRPC tests under this folder load this conftest too.
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("models")
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, Y)
    save_model(forest, root / "forest", input_example=X[:2])
    logistic = LogisticRegression().fit(X, Y)
    save_model(logistic, root / "iris", predictor=sp.LabelledIris, input_example=X[:2])
    strict = Signature(
        inputs=[TensorSpec(name="x", datatype="FP64", shape=[-1, 4], allow_nan=False)]
    )
    save_model(logistic, root / "strict", signature=strict)
    for name, value in (("const1", "1"), ("const2", "2")):
        source = root / f"{name}-source" / "value.txt"
        source.parent.mkdir()
        source.write_text(value)
        save_model(
            str(source),
            root / name,
            predictor=sp.Constant,
            format="custom",
            input_example=np.ones((1, 4)),
        )
    save_model(logistic, root / "versioned", version="3", input_example=X[:2])
    save_model(None, root / "slow", predictor=sp.Slow)
    save_model(None, root / "raises", predictor=sp.Raises)
    broken = save_model(
        None, root / "broken", predictor=sp.Breakable, input_example=np.ones((1, 4))
    )
    (broken / "broken.flag").write_text("")
    save_model(None, root / "sleepy", predictor=sp.Sleepy)
    save_model(None, root / "gated", predictor=sp.Gated)
    return root


@pytest.fixture(scope="session")
def max_body() -> int:
    """The shared server's body limit."""
    return MAX_BODY


@pytest.fixture(scope="session")
def server(models_dir: Path) -> Iterator[ServerProcess]:
    """One real server (2 workers) serving several models, shared by the HTTP tests."""
    uris = [models_dir / n for n in ("forest", "iris", "strict", "raises", "sleepy", "versioned")]
    with start_server(*uris, workers=2, args=["--max-body-size", str(MAX_BODY)]) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
