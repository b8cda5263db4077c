"""examples/continuous_deployment end to end: real runs, a real server, the real CLI.

Three runs with different hyperparameters: the first deploys, the better second one
updates the same server (same UUID and URL), the worse third one leaves it serving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "continuous_deployment" / "run.py"
SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    env.pop("SHIPYARD_STORE_URL", None)
    return subprocess.run(
        list(args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )


def _example(home: Path, c: float) -> str:
    done = _run(home, sys.executable, str(EXAMPLE), "--C", str(c), "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _json(home: Path, *args: str) -> Any:
    done = _run(home, *SHIPYARD, *args, "--output", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _described(home: Path, example_output: str) -> dict[str, Any]:
    """The run the example reported (``Run <id> of pipeline ...``), as the CLI shows it."""
    run_id = example_output.split()[1]
    run: dict[str, Any] = _json(home, "pipeline", "runs", "describe", run_id)
    assert run["id"] == run_id
    run["by_step"] = {step["name"]: step for step in run["steps"]}
    return run


def _served_accuracy(url: str) -> float:
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
    answer = httpx.post(url, json=body, timeout=30).json()
    predictions = np.asarray(answer["outputs"][0]["data"])
    return float(np.mean(predictions == y_test))


def test_two_runs_update_one_server_and_a_worse_run_leaves_it(shipyard_home: Path) -> None:
    home = shipyard_home
    first = _described(home, _example(home, 0.1))
    assert first["status"] == "completed"
    assert first["metadata"]["deployment_decision"]["deploy"] is True
    service = first["by_step"]["model_deployer_step"]["service"]
    uuid, url = service["uuid"], service["prediction_url"]
    first_accuracy = first["metadata"]["deployment_decision"]["metric"]
    assert _served_accuracy(url) == first_accuracy

    # Different hyperparameters, a better model: the same server now serves it.
    second = _described(home, _example(home, 1.0))
    decision = second["metadata"]["deployment_decision"]
    assert decision["deploy"] is True and decision["metric"] > first_accuracy
    assert second["by_step"]["model_deployer_step"]["service"] == {
        "uuid": uuid,
        "prediction_url": url,
    }
    assert _served_accuracy(url) == decision["metric"]
    second_model = second["by_step"]["train"]["outputs"]["output"]["uri"]

    servers = _json(home, "model-deployer", "models", "list")
    assert len(servers) == 1
    assert servers[0]["uuid"] == uuid
    assert servers[0]["pipeline_name"] == "continuous_deployment"
    assert servers[0]["pipeline_step_name"] == "model_deployer_step"
    assert servers[0]["model_uri"] == second_model

    # A worse model passes the threshold but not the deployed one: the better one stays.
    third = _described(home, _example(home, 0.01))
    decision = third["metadata"]["deployment_decision"]
    assert decision["deploy"] is False
    assert decision["metric"] < decision["deployed_metric"]
    assert third["by_step"]["model_deployer_step"]["service"]["uuid"] == uuid
    assert third["by_step"]["check_predictions"]["outputs"]["output"]["summary"] == {
        "value": second["metadata"]["deployment_decision"]["metric"]
    }
    servers = _json(home, "model-deployer", "models", "list")
    assert [(s["uuid"], s["model_uri"], s["state"]) for s in servers] == [
        (uuid, second_model, "active")
    ]

    deleted = _run(home, *SHIPYARD, "model-deployer", "models", "delete", uuid, "--yes")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=5)
