"""models:/, runs:/ URIs through MLflow's client in load_model, the server and batch, and
the errors: unreachable tracking server, unknown model or version, mlflow not installed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import shipyard
from shipyard.cli.main import app
from shipyard.errors import ModelLoadError, ModelNotFoundError
from shipyard.models._mlflow_uri import pin_mlflow_uri
from shipyard.testing import free_port, start_server

from .conftest import Registry


def _classes(registry: Registry, uri: str) -> list[int]:
    model = shipyard.load_model(uri, tracking_uri=registry.tracking_uri)
    return [int(v) for v in np.asarray(model.predict(registry.rows)).ravel()]


def test_registry_uris_resolve_and_load(home: Path, registry: Registry) -> None:
    client = registry.client()
    client.set_registered_model_alias(registry.name, "champion", "2")  # type: ignore[attr-defined]
    v1 = _classes(registry, f"models:/{registry.name}/1")
    v2 = _classes(registry, f"models:/{registry.name}@champion")
    assert v2 == [1 - v for v in v1]  # the versions disagree on every row
    assert _classes(registry, f"runs:/{registry.run_id}/model") == v1
    pinned = pin_mlflow_uri(f"models:/{registry.name}@champion", registry.tracking_uri)
    assert (pinned.pinned_uri, pinned.version) == (f"models:/{registry.name}/2", "2")
    assert pin_mlflow_uri(f"models:/{registry.name}/latest", registry.tracking_uri).version == "3"


def test_unknown_models_versions_and_servers_are_one_line(home: Path, registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        pin_mlflow_uri(f"models:/{registry.name}/9", registry.tracking_uri)
    assert str(caught.value) == (
        f"The registered model '{registry.name}' has no version 9 (models:/{registry.name}/9); "
        "its versions: 1, 2, 3."
    )
    with pytest.raises(
        ModelNotFoundError, match=r"No registered model 'nope' .*registered models: .*clf"
    ):
        pin_mlflow_uri("models:/nope/1", registry.tracking_uri)
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ModelLoadError) as unreachable:
        shipyard.load_model(f"models:/{registry.name}/1", tracking_uri=dead)
    assert str(unreachable.value).startswith(f"Cannot reach the MLflow tracking server at {dead}")
    assert "\n" not in str(unreachable.value)


def test_without_mlflow_the_extra_is_named(
    home: Path, without_packages: Callable[..., dict[str, str]]
) -> None:
    code = "import shipyard; shipyard.load_model('models:/clf/1')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**without_packages("mlflow"), "PATH": "/usr/bin:/bin", "SHIPYARD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "pip install 'shipyard[mlflow]'" in result.stderr


def test_serve_and_batch_predict_a_registry_uri(
    home: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"models:/{registry.name}/1"
    expected = _classes(registry, uri)
    env = {"MLFLOW_TRACKING_URI": registry.tracking_uri}
    with start_server(uri, env=env, timeout=240) as server:
        answer = httpx.post(
            f"{server.url}/invocations", json={"inputs": registry.rows.tolist()}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert [int(v) for v in answer.json()["predictions"]] == expected
        assert httpx.get(f"{server.url}/v2/models/{registry.name}", timeout=10).status_code == 200
    frame = pd.DataFrame(registry.rows, columns=[f"c{i}" for i in range(4)])
    frame.to_parquet(home / "rows.parquet")
    # The CLI's --tracking-uri sets MLFLOW_TRACKING_URI for its workers: restored after.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    result = CliRunner().invoke(
        app,
        [
            "batch",
            "predict",
            uri,
            "--input",
            str(home / "rows.parquet"),
            "--output",
            str(home / "out.parquet"),
            "--tracking-uri",
            registry.tracking_uri,
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(home / "out.parquet")
    assert [int(v) for v in out.iloc[:, -1]] == expected
