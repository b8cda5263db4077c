"""A rolling replacement whose caller died after the new processes became the server but
before the old ones were stopped: the next status check tells the old ones to drain and
leave, rather than letting them answer with the old settings beside the new ones."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.deployers.local import LocalModelDeployer, LocalModelServer
from shipyard.deployers.local._rolling import PREVIOUS_PID_FILE
from shipyard.services.process import process_start_time
from shipyard.testing import start_server

from .conftest import Models


def test_old_processes_a_killed_replacement_left_running_are_stopped(
    home: Path, models: Models
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        {"model_uri": models.a, "model_name": "clf", "workers": 1}, timeout=300
    )
    assert isinstance(server, LocalModelServer)
    # What such a caller leaves: pid.json names the new supervisor, pid.previous.json the
    # old one, still running. A real server (supervisor and worker) is the old one here:
    # the moment between the two steps is too short to kill a process in, reliably.
    with start_server(models.a) as old:
        start_time = process_start_time(old.pid)
        assert start_time is not None
        (server.run_path / PREVIOUS_PID_FILE).write_text(
            json.dumps({"pid": old.pid, "start_time": start_time})
        )
        [found] = deployer.find_model_server(model_name="clf")
        assert found.is_running
        old.process.wait(timeout=120)  # told to drain and stop: it leaves on its own
        [again] = deployer.find_model_server(model_name="clf")
    assert not (server.run_path / PREVIOUS_PID_FILE).exists()
    assert isinstance(again, LocalModelServer) and again.is_running
    assert again.running_pid() == server.running_pid()
    assert [int(v) for v in again.predict(models.rows)] == models.expected_a()
