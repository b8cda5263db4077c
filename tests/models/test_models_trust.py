"""Model trust on the loader's side: a pickle/joblib model from a URL (here a real
http.server on 127.0.0.1) is refused unless the caller trusts it (--trust, a pinned
SHA-256, an allow-listed URI prefix); a local file loads as before; a skops file's
trusted types come from the caller, never from its own shipyard.yaml."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from shipyard.errors import ModelLoadError, UntrustedModelError
from shipyard.models import load_model, save_model
from shipyard.testing import start_server

X = np.random.default_rng(0).normal(size=(60, 4))
Y = (X[:, 0] > 0).astype(np.int64)


@pytest.fixture
def isolated(home: Path) -> Path:
    """A fresh SHIPYARD_HOME: the fetched models' cache and the allow-list are its own."""
    return home


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    serve_folder: Callable[[Path], AbstractContextManager[str]],
) -> Iterator[tuple[str, Path]]:
    """(base URL, folder) of ``python -m http.server`` serving a joblib model file."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("www")
    saved = save_model(LogisticRegression().fit(X, Y), root / "clf", input_example=X[:2])
    (root / "model.joblib").write_bytes((saved / "model.joblib").read_bytes())
    with serve_folder(root) as base:
        yield base, root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_pickle_from_a_url_needs_trust(isolated: Path, served: tuple[str, Path]) -> None:
    base, root = served
    url = f"{base}/model.joblib"
    with pytest.raises(UntrustedModelError) as refused:
        load_model(url)
    line = str(refused.value)
    assert "\n" not in line
    assert "runs whatever code" in line and "--trust" in line and "--sha256" in line
    assert "skops" in line and "ONNX" in line and "XGBoost/LightGBM" in line

    assert load_model(url, trusted=True).predict(X[:3]).shape == (3,)
    digest = _sha256(root / "model.joblib")
    assert load_model(url, sha256=digest).predict(X[:3]).shape == (3,)
    with pytest.raises(UntrustedModelError, match=f"SHA-256 is {digest}, not the pinned"):
        load_model(url, sha256="0" * 64)
    # A pinned hash is checked on a local file too.
    with pytest.raises(UntrustedModelError, match="not the pinned"):
        load_model(root / "model.joblib", sha256="0" * 64)


def test_an_allow_listed_prefix_trusts_what_is_under_it(
    isolated: Path, served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = served
    # A prefix covers what is below it at a path boundary, not a sibling that starts alike.
    monkeypatch.setenv("SHIPYARD_TRUSTED_MODEL_URIS", f"https://elsewhere/x, {base}/model")
    with pytest.raises(UntrustedModelError):
        load_model(f"{base}/model.joblib")
    monkeypatch.setenv("SHIPYARD_TRUSTED_MODEL_URIS", json.dumps([f"{base}/"]))
    assert load_model(f"{base}/model.joblib").format == "sklearn"


def test_a_local_joblib_loads_with_no_flag_and_says_it_runs_code(
    isolated: Path, served: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, root = served
    with caplog.at_level("INFO", logger="shipyard.models"):
        loaded = load_model(root / "model.joblib")
    assert loaded.predict(X[:2]).shape == (2,)
    said = [r.getMessage() for r in caplog.records if "runs code" in r.getMessage()]
    assert len(said) == 1 and "a joblib file" in said[0], said


def test_serve_and_model_predict_refuse_then_trust(
    isolated: Path, served: tuple[str, Path]
) -> None:
    base, root = served
    url = f"{base}/model.joblib"
    env = {**os.environ, "SHIPYARD_HOME": str(isolated)}
    cli = [sys.executable, "-m", "shipyard.cli.main"]
    refused = subprocess.run(
        [*cli, "serve", url, "--http-port", "0", "--workers", "1", "--no-grpc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert refused.returncode != 0
    assert "Refusing to load" in refused.stderr and "--trust" in refused.stderr, refused.stderr
    with start_server(url, args=["--trust"], env={"SHIPYARD_HOME": str(isolated)}) as server:
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64",
                            "data": X[0].tolist()}]}  # fmt: skip
        answer = httpx.post(f"{server.url}/v2/models/model/infer", json=body, timeout=30)
        assert answer.status_code == 200, answer.text

    rows = json.dumps(X[:2].tolist())
    predict = [*cli, "model", "predict", url, "--data", rows]
    no = subprocess.run(predict, env=env, capture_output=True, text=True, timeout=180)
    assert no.returncode == 1 and "Refusing to load" in no.stderr, no.stderr
    digest = _sha256(root / "model.joblib")
    yes = subprocess.run(
        [*predict, "--sha256", digest], env=env, capture_output=True, text=True, timeout=180
    )
    assert yes.returncode == 0, yes.stderr
    assert len(json.loads(yes.stdout)["predictions"]) == 2


def test_batch_predict_needs_trust_for_a_remote_pickle(
    isolated: Path, served: tuple[str, Path], tmp_path: Path
) -> None:
    import pandas as pd

    from shipyard.batch import predict

    base, _ = served
    source = tmp_path / "in.parquet"
    pd.DataFrame(X[:10], columns=list("abcd")).to_parquet(source)
    with pytest.raises(UntrustedModelError):
        predict(f"{base}/model.joblib", str(source), str(tmp_path / "no.parquet"))
    summary = predict(
        f"{base}/model.joblib", str(source), str(tmp_path / "yes.parquet"), trusted=True
    )
    assert summary.rows == 10


def test_skops_types_come_from_the_caller_not_the_manifest(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    path = save_model(
        DecisionTreeClassifier(max_depth=3).fit(X, Y), tmp_path / "tree", serialization="skops"
    )
    manifest = yaml.safe_load((path / "shipyard.yaml").read_text())
    needed = manifest["trusted_types"]
    assert "sklearn.tree._tree.Tree" in needed  # what save_model found the file needs
    with pytest.raises(ModelLoadError, match=r"sklearn\.tree\._tree\.Tree") as refused:
        load_model(path)
    assert "cannot vouch for itself" in str(refused.value)
    assert load_model(path, trusted_types=needed).predict(X[:2]).shape == (2,)
    assert load_model(path, trusted=True).predict(X[:2]).shape == (2,)
    monkeypatch.setenv("SHIPYARD_TRUSTED_TYPES", ",".join(needed))
    assert load_model(path).predict(X[:2]).shape == (2,)


def test_deploy_refuses_a_remote_pickle_unless_trusted(
    isolated: Path, served: tuple[str, Path]
) -> None:
    from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer
    from shipyard.errors import DeploymentError

    base, root = served
    url = f"{base}/model.joblib"
    deployer = LocalModelDeployer.get_active_model_deployer()
    with pytest.raises(DeploymentError, match="Refusing to load"):
        deployer.deploy_model(
            LocalDeploymentConfig(model_uri=url, model_name="remote", workers=1), timeout=300
        )
    digest = _sha256(root / "model.joblib")
    pinned = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=url, model_name="remote", workers=1, sha256=digest),
        timeout=300,
    )
    assert pinned.is_running
    assert pinned.predict(X[:2]).shape == (2,)
