"""`--output json` (`-O json`) on every command a script drives a model server with: the
answer is one JSON document (JSON lines for logs) on stdout, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import shipyard as shipyard_pkg

from .conftest import ok
from .test_models_cli import model_dir

__all__ = ["model_dir"]  # the fixture, shared with test_models_cli


def test_every_server_command_speaks_json(home: Path, model_dir: Path) -> None:
    rows = [[0.5, -1.0, 2.0], [-2.0, 0.3, 0.1]]
    expected = shipyard_pkg.load_model(model_dir).predict(np.asarray(rows)).tolist()
    deployed = json.loads(
        ok("deploy", str(model_dir), "--name", "clf", "--workers", "1", "-O", "json")
    )
    uuid, url = deployed["uuid"], deployed["prediction_url"]

    answer = json.loads(ok("predict", "clf", "--data", json.dumps(rows), "-O", "json"))
    assert answer == {"predictions": expected}
    local = json.loads(
        ok("model", "predict", str(model_dir), "--data", json.dumps(rows), "-O", "json")
    )
    assert local["predictions"] == expected

    got = json.loads(ok("model-deployer", "models", "get-url", uuid[:6], "-O", "json"))
    assert got == {"uuid": uuid, "prediction_url": url}

    logged = ok("model-deployer", "models", "logs", uuid, "--tail", "3", "-O", "json")
    lines = [json.loads(line) for line in logged.splitlines()]
    assert len(lines) == 3 and all(set(line) == {"uuid", "line"} for line in lines)
    assert {line["uuid"] for line in lines} == {uuid}

    stopped = json.loads(ok("model-deployer", "models", "stop", uuid[:8], "-O", "json"))
    assert (stopped["uuid"], stopped["state"]) == (uuid, "inactive")
    started = json.loads(ok("model-deployer", "models", "start", uuid, "-O", "json"))
    assert (started["uuid"], started["state"], started["prediction_url"]) == (
        uuid,
        "active",
        url,
    )
    deleted = json.loads(ok("model-deployer", "models", "delete", uuid, "--yes", "-O", "json"))
    assert deleted == {"uuid": uuid, "deleted": True}
