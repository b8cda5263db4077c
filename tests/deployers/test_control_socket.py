"""The control socket of a local model server belongs to one start of one server.

A supervisor unlinks its control socket when it exits, and one that starts replaces
whatever socket is at its path. A second supervisor started for the same server (two
starts racing: the ports are shared through SO_REUSEPORT, so it gets that far) must
therefore never be given the live server's socket path, or its exit takes the live
server's control channel away and the next in-place update is refused.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.services import process

from .conftest import Models


def _config(model_uri: str) -> LocalDeploymentConfig:
    return LocalDeploymentConfig(model_uri=model_uri, model_name="clf", pipeline_name="sock")


def _wait_ready(log: Path, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the supervisor ``proc`` says it is ready (it has bound its socket)."""
    while "model server ready" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")
        threading.Event().wait(0.1)


def test_a_second_supervisor_cannot_take_the_live_servers_socket(
    home: Path, models: Models, tmp_path: Path
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    live = deployer.deploy_model(_config(models.a), timeout=300)
    assert isinstance(live, LocalModelServer)
    live_socket = Path(live.control_socket)
    pid = live.running_pid()

    # What a second start of the same server runs (a copy that did not see the first).
    twin = live.model_copy(update={"control_socket": ""})
    command = twin.command()
    assert Path(twin.control_socket) != live_socket
    log_path = tmp_path / "twin.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_ready(log_path, proc)
        proc.terminate()  # it drains and exits, unlinking its own socket
        proc.wait(timeout=120)
    finally:
        start_time = process.process_start_time(proc.pid)
        if proc.poll() is None and start_time is not None:
            process.terminate(proc.pid, start_time, timeout=10, force=True)
        proc.wait()
        log.close()

    assert live_socket.exists()
    updated = deployer.deploy_model(_config(models.b), replace=True, timeout=300)
    assert (updated.uuid, updated.running_pid()) == (live.uuid, pid)  # type: ignore[attr-defined]
    assert updated.predict(models.rows).tolist() == [1 - v for v in models.expected_a()]


def test_each_start_gets_a_socket_path_of_its_own(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    first = deployer.deploy_model(_config(models.a), timeout=300)
    assert isinstance(first, LocalModelServer)
    before = Path(first.control_socket)
    deployer.stop_model_server(first.uuid, timeout=60)
    assert not before.exists()
    restarted = deployer.start_model_server(first.uuid, timeout=300)
    assert isinstance(restarted, LocalModelServer)
    after = Path(restarted.control_socket)
    assert after != before and after.exists()
    # In the run dir when the path is short enough, else in a private 0700 directory
    # that holds nothing else.
    folder = after.parent
    if folder != restarted.run_path:
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert os.listdir(folder) == [after.name]
    # A late exit of the earlier supervisor (it unlinks its own path) changes nothing.
    before.unlink(missing_ok=True)
    updated = deployer.deploy_model(_config(models.b), replace=True, timeout=300)
    assert updated.uuid == first.uuid
    deployer.delete_model_server(first.uuid, timeout=60)
    assert not after.exists() and not (folder != restarted.run_path and folder.exists())
