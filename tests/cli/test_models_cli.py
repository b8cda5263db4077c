"""Every `model-deployer models`, `deploy` and `predict` command against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

import shipyard as shipyard_pkg
from shipyard.errors import BadRequestError, DeploymentError, ServiceNotFoundError

from .conftest import invoke, ok, one_red_line, shipyard


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        n_samples=200, n_features=3, n_informative=2, n_redundant=0, random_state=1
    )
    path = tmp_path_factory.mktemp("m") / "clf"
    shipyard_pkg.save_model(LogisticRegression().fit(x, y), path, input_example=x[:2])
    return path


def test_models_commands_end_to_end(home: Path, model_dir: Path, tmp_path: Path) -> None:
    rows = [[0.5, -1.0, 2.0], [-2.0, 0.3, 0.1]]
    expected = shipyard_pkg.load_model(model_dir).predict(np.asarray(rows)).tolist()

    # deploy (a real detached server process)
    deployed = json.loads(
        ok("deploy", str(model_dir), "--name", "clf", "--workers", "1", "-O", "json")
    )
    uuid, url = deployed["uuid"], deployed["prediction_url"]
    assert deployed["state"] == "active"
    assert url.endswith("/v2/models/clf/infer")
    # The same deploy again returns the running server as it is.
    assert f"Model server {uuid} serves 'clf'" in ok("deploy", str(model_dir), "--name", "clf")

    # list: table and JSON, with filters
    table = shipyard(home, "model-deployer", "models", "list")
    assert table.returncode == 0, table.stderr
    assert uuid in table.stdout and "✅" in table.stdout and "local" in table.stdout
    listed = json.loads(
        ok("model-deployer", "models", "list", "--model", "clf", "--running", "-O", "json")
    )
    assert [r["uuid"] for r in listed] == [uuid]
    assert json.loads(ok("model-deployer", "models", "list", "--pipeline", "x", "-O", "json")) == []

    # describe / get-url, by a UUID prefix
    described = json.loads(ok("model-deployer", "models", "describe", uuid[:6], "-O", "json"))
    assert described["uuid"] == uuid
    assert described["config"]["replicas"] == 1
    assert described["info"]["DAEMON_PID"]
    assert uuid in ok("model-deployer", "models", "describe", uuid)
    assert ok("model-deployer", "models", "get-url", uuid[:6]).strip() == url

    # predict: by name with JSON rows, by UUID with a V2 request from a file
    answer = json.loads(ok("predict", "clf", "--data", json.dumps(rows)))
    assert answer == {"predictions": expected}
    # Data the server cannot take: one red line, no traceback (the process once; the
    # other cases in-process, where a ShipyardError is what main turns into that line).
    assert "null, NaN or infinity" in one_red_line(
        shipyard(home, "predict", "clf", "--data", "[[NaN, 1, 2]]")
    )
    for bad, reason in [
        ("null", "non-empty list of numbers"),
        ('[["a", 1, 2]]', "rectangular list of numbers"),
        ("[[1, 2, 3], [1, 2]]", "rectangular list of numbers"),
        ('[{"a": 1}]', "the model takes 3, by position"),
    ]:
        refused = invoke("predict", "clf", "--data", bad)
        assert isinstance(refused.exception, BadRequestError), refused.output
        assert reason in str(refused.exception)
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [2, 3],
                        "datatype": "FP64",
                        "data": [v for row in rows for v in row],
                    }
                ]
            }
        )
    )
    v2 = json.loads(ok("predict", uuid[:8], "--data", f"@{request}"))
    assert v2["outputs"][0]["data"] == expected

    # logs, and logs --follow in its own process, which ends when the server stops
    assert any(
        line for line in ok("model-deployer", "models", "logs", uuid, "--tail", "3").splitlines()
    )
    assert len(ok("model-deployer", "models", "logs", uuid, "--tail", "2").splitlines()) == 2
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard.cli.main",
            "model-deployer",
            "models",
            "logs",
            uuid,
            "--follow",
        ],
        env={**os.environ, "SHIPYARD_HOME": str(home)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().startswith("--- shipyard")

        # stop: the server is gone, the list says inactive, the follower ends
        assert "stopped" in ok("model-deployer", "models", "stop", uuid[:8])
        assert follower.wait(timeout=120) == 0
    finally:
        follower.kill()
        follower.wait()
        if follower.stdout is not None:
            follower.stdout.close()
    stopped = json.loads(ok("model-deployer", "models", "list", "-O", "json"))
    assert [(r["uuid"], r["state"]) for r in stopped] == [(uuid, "inactive")]
    with pytest.raises(httpx.HTTPError):
        httpx.post(url, json={}, timeout=2)
    assert json.loads(ok("model-deployer", "models", "list", "--running", "-O", "json")) == []

    # start: back on the same URL
    assert url in ok("model-deployer", "models", "start", uuid)
    assert json.loads(ok("predict", "clf", "--data", json.dumps(rows))) == {"predictions": expected}

    # delete: asks first; --yes does it
    refused = invoke("model-deployer", "models", "delete", uuid)
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert f"Model server {uuid} deleted." in ok(
        "model-deployer", "models", "delete", uuid, "--yes"
    )
    assert json.loads(ok("model-deployer", "models", "list", "-O", "json")) == []
    assert not (home / "services" / uuid).exists()
    result = invoke("model-deployer", "models", "describe", uuid)
    assert isinstance(result.exception, ServiceNotFoundError)


def test_user_mistakes_are_one_red_line(home: Path) -> None:
    assert one_red_line(shipyard(home, "model-deployer", "models", "describe", "nope")) == (
        "No model server named or with UUID 'nope'; see `shipyard model-deployer models list`."
    )
    assert one_red_line(shipyard(home, "predict", "nope", "--data", "[[1]]")).startswith(
        "No model server named or with UUID 'nope'."
    )
    assert "is not JSON" in one_red_line(shipyard(home, "predict", "x", "--data", "[[1"))
    # A deploy option out of range: the key and what is allowed, not a pydantic dump.
    message = one_red_line(shipyard(home, "deploy", "/tmp/m", "--name", "m", "--port", "99999"))
    assert message.endswith(
        "(LocalModelServerConfig): bad value 99999 for 'port': "
        "Input should be less than or equal to 65535"
    ), message
    workers = invoke("deploy", "/tmp/m", "--name", "m", "--workers", "0")
    assert isinstance(workers.exception, DeploymentError)
    assert "bad value 0 for 'workers': Input should be greater than or equal to 1" in str(
        workers.exception
    )
    assert "\n" not in str(workers.exception) and "pydantic" not in str(workers.exception)
    # A name that cannot be part of the prediction URL is refused before anything starts.
    for bad in ("bad/name", "a b", "../x", "%2F"):
        named = invoke("deploy", "/tmp/m", "--name", bad)
        assert isinstance(named.exception, DeploymentError), named.output
        assert f"bad value {bad!r} for 'model_name': a model name may use letters" in str(
            named.exception
        )
    assert not (home / "services").exists() or not any((home / "services").iterdir())


def test_no_active_deployer_names_the_commands_that_add_one(home: Path) -> None:
    ok("stack", "register", "bare", "-a", "default", "--orchestrator", "default", "--set")
    message = one_red_line(shipyard(home, "model-deployer", "models", "list"))
    assert "The active stack 'bare' has no model deployer." in message
    assert "shipyard model-deployer register local --flavor=local" in message
    assert "has no model deployer" in one_red_line(
        shipyard(home, "deploy", "/tmp/model", "--name", "m")
    )
