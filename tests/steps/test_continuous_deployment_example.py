"""examples/continuous_deployment end to end: real runs, a real server, the real CLI.

Three runs with different hyperparameters: the first deploys, the better second one
updates the same server (same UUID and URL), the worse third one leaves it serving.
The first run is the README's command in its own process; the other two call the
example's ``main`` in this process, which saves two interpreter and scikit-learn
start-ups.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "continuous_deployment" / "run.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("continuous_deployment_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _described(run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = _cli_json("pipeline", "runs", "describe", run_id)
    assert run["id"] == run_id
    run["by_step"] = {step["name"]: step for step in run["steps"]}
    return run


def _served_accuracy(url: str, uuid: str) -> float:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=42, stratify=y)
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(x_test.shape),
                "datatype": "FP64",
                "data": x_test.ravel().tolist(),
            }
        ]
    }
    from shipyard.deployers.local import LocalModelDeployer

    # The server wants its token: the registry knows where it is.
    headers = (
        LocalModelDeployer.get_active_model_deployer().get_model_server(uuid).request_headers()
    )
    answer = httpx.post(url, json=body, headers=headers, timeout=30).json()
    predictions = np.asarray(answer["outputs"][0]["data"])
    return float(np.mean(predictions == y_test))


def test_two_runs_update_one_server_and_a_worse_run_leaves_it(home: Path) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--C", "0.1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    first = _described(done.stdout.split()[1])  # "Run <id> of pipeline ..."
    assert first["status"] == "completed"
    assert first["metadata"]["deployment_decision"]["deploy"] is True
    service = first["by_step"]["model_deployer_step"]["service"]
    uuid, url = service["uuid"], service["prediction_url"]
    first_accuracy = first["metadata"]["deployment_decision"]["metric"]
    assert _served_accuracy(url, uuid) == first_accuracy

    # Different hyperparameters, a better model: the same server now serves it.
    example = _load_example()
    second = _described(example.main(["--C", "1.0"]).id)
    decision = second["metadata"]["deployment_decision"]
    assert decision["deploy"] is True and decision["metric"] > first_accuracy
    assert second["by_step"]["load_data"]["status"] == "cached"
    assert second["by_step"]["model_deployer_step"]["service"] == {
        "uuid": uuid,
        "prediction_url": url,
    }
    assert _served_accuracy(url, uuid) == decision["metric"]
    second_model = second["by_step"]["train"]["outputs"]["output"]["uri"]

    servers = _cli_json("model-deployer", "models", "list")
    assert len(servers) == 1
    assert servers[0]["uuid"] == uuid
    assert servers[0]["pipeline_name"] == "continuous_deployment"
    assert servers[0]["pipeline_step_name"] == "model_deployer_step"
    assert servers[0]["model_uri"] == second_model

    # A worse model passes the threshold but not the deployed one: the better one stays.
    third = _described(example.main(["--C", "0.01"]).id)
    decision = third["metadata"]["deployment_decision"]
    assert decision["deploy"] is False
    assert decision["metric"] < decision["deployed_metric"]
    assert third["by_step"]["model_deployer_step"]["service"]["uuid"] == uuid
    assert third["by_step"]["check_predictions"]["outputs"]["output"]["summary"] == {
        "value": second["metadata"]["deployment_decision"]["metric"]
    }
    servers = _cli_json("model-deployer", "models", "list")
    assert [(s["uuid"], s["model_uri"], s["state"]) for s in servers] == [
        (uuid, second_model, "active")
    ]

    deleted = CliRunner().invoke(app, ["model-deployer", "models", "delete", uuid, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=5)
