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


def _supervisors(marker: str) -> list[int]:
    """PIDs of processes whose command line holds ``marker`` and whose parent's does not
    (a server's forked workers share its command line)."""

    def cmdline(pid: int | str) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return ""

    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and marker in cmdline(entry.name):
            stat = (entry / "stat").read_text()
            ppid = stat[stat.rindex(")") + 2 :].split()[1]
            if marker not in cmdline(ppid):
                found.append(int(entry.name))
    return found


def test_two_processes_starting_one_server_at_once(home: Path, models: Models) -> None:
    from shipyard.deployers.local import LocalDeploymentConfig, LocalModelServer

    deployer = LocalModelDeployer.get_active_model_deployer()
    service = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=models.a, model_name="once"), timeout=300
    )
    url = str(service.prediction_url)
    deployer.stop_model_server(service.uuid, timeout=60)

    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    command = [sys.executable, "-m", "shipyard.cli.main", "model-deployer", "models", "start"]
    procs = [
        subprocess.Popen(
            [*command, service.uuid[:8]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert url in out  # both report the one server, on its old URL

    [running] = deployer.find_model_server(model_name="once")
    assert isinstance(running, LocalModelServer)
    assert running.is_running and running.prediction_url == url
    # One server process serves it: the second start found it running.
    assert _supervisors(running.control_socket) == [running.running_pid()]
    assert len(list((home / "services").glob("*/pid.json"))) == 1
    assert running.predict(models.rows).tolist() == models.expected_a()
