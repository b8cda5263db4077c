"""Several processes deploying at once: no lost write, no double server for one model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shipyard.deployers.local import LocalModelDeployer

from .conftest import Models

_DEPLOY = """
import json, sys
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer

uri, name = sys.argv[1], sys.argv[2]
deployer = LocalModelDeployer.get_active_model_deployer()
service = deployer.deploy_model(
    LocalDeploymentConfig(model_uri=uri, model_name=name, pipeline_name="p"),
    replace=True,
    timeout=300,
)
print(json.dumps({"uuid": service.uuid, "url": service.prediction_url}))
"""


def test_three_processes_deploying_two_models_at_once(home: Path, models: Models) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    jobs = [(models.a, "first"), (models.a, "first"), (models.b, "second")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _DEPLOY, uri, name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for uri, name in jobs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    # The same model deployed twice at once is one server; the other model has its own.
    assert results[0] == results[1]
    assert results[2]["uuid"] != results[0]["uuid"]
    deployer = LocalModelDeployer.get_active_model_deployer()
    services = {s.config.model_name: s for s in deployer.find_model_server(pipeline_name="p")}
    assert sorted(services) == ["first", "second"]
    assert services["first"].uuid == results[0]["uuid"]
    assert services["second"].uuid == results[2]["uuid"]
    assert all(s.is_running for s in services.values())
    assert len(list((home / "services").glob("*/pid.json"))) == 2
    expected = models.expected_a()
    assert services["first"].predict(models.rows).tolist() == expected
    assert services["second"].predict(models.rows).tolist() == [1 - v for v in expected]
