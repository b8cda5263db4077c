"""The mlflow flavor from the command line, as a new user walks it: ``shipyard deploy
models:/...`` with the mlflow stack, ``shipyard predict`` (with engine shipyard's bearer
token), every ``model-deployer models`` verb, and the one-line errors (a model without
the pyfunc flavor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from shipyard.deployers.mlflow import MLFlowModelDeployer

from .conftest import Registry, activate_mlflow_stack, cli


def test_deploy_predict_and_every_models_verb(home: Path, registry: Registry) -> None:
    activate_mlflow_stack(registry)
    rows = json.dumps(registry.rows.tolist())
    deployed = json.loads(
        cli(
            "deploy",
            f"models:/{registry.name}/1",
            "--name",
            "clf",
            "--set",
            "engine=shipyard",
            "--timeout",
            "240",
            "--output",
            "json",
        )
    )
    uuid = deployed["uuid"]
    # engine shipyard requires the service's bearer token; `shipyard predict` and
    # Service.predict send it.
    refused = httpx.post(
        deployed["prediction_url"], json={"inputs": registry.rows.tolist()}, timeout=30
    )
    assert refused.status_code == 401
    first = json.loads(cli("predict", "clf", "--data", rows))["predictions"]
    assert len(first) == len(registry.rows)
    service = MLFlowModelDeployer.get_active_model_deployer().get_model_server(uuid)
    assert [int(v) for v in service.predict(registry.rows).ravel()] == first
    [listed] = json.loads(cli("model-deployer", "models", "list", "--output", "json"))
    assert (listed["uuid"], listed["model_version"]) == (uuid, "1")
    info = json.loads(cli("model-deployer", "models", "describe", uuid, "--output", "json"))["info"]
    assert (info["ENGINE"], info["REGISTRY_MODEL_NAME"]) == ("shipyard", registry.name)
    assert info["REGISTRY_MODEL_VERSION"] == "1"
    url = cli("model-deployer", "models", "get-url", uuid).strip()
    assert url.endswith("/v2/models/clf/infer")
    assert "models:/clf/1" in cli("model-deployer", "models", "logs", uuid)

    # A redeploy of another version on the command line updates the same server.
    again = json.loads(
        cli("deploy", f"models:/{registry.name}/2", "--name", "clf", "--output", "json")
    )
    assert again["uuid"] == uuid
    second = json.loads(cli("predict", "clf", "--data", rows))["predictions"]
    assert second == [1 - v for v in first]

    cli("model-deployer", "models", "stop", uuid)
    [stopped] = json.loads(cli("model-deployer", "models", "list", "--output", "json"))
    assert stopped["state"] == "inactive"
    cli("model-deployer", "models", "start", uuid, "--timeout", "240")
    assert json.loads(cli("predict", "clf", "--data", rows))["predictions"] == second
    cli("model-deployer", "models", "delete", uuid, "--yes")
    assert json.loads(cli("model-deployer", "models", "list", "--output", "json")) == []


def test_a_model_without_the_pyfunc_flavor_is_one_line(
    home: Path, registry: Registry, tmp_path: Path
) -> None:
    activate_mlflow_stack(registry)
    model = tmp_path / "keras-only"
    model.mkdir()
    (model / "MLmodel").write_text("flavors:\n  keras:\n    keras_version: 3.0.0\n")
    # Its own process, as a user runs it: the error is one line on stderr.
    result = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "deploy", str(model), "--name", "k"],
        env={**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "has the flavor(s) keras but no python_function flavor" in lines[0]
