from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard.errors import ServiceError
from shipyard.services import (
    LocalDaemonService,
    Service,
    ServiceState,
    TCPHealthCheck,
)
from shipyard.services.process import group_members, process_start_time

from .daemons import EchoDaemon


def _wait_gone(pid: int) -> None:
    # Bounded by pytest-timeout; the process must disappear, not within a set time.
    while process_start_time(pid) is not None:
        time.sleep(0.05)


def test_start_check_stop(home: Path) -> None:
    daemon = EchoDaemon()
    daemon.start(timeout=30)
    try:
        assert daemon.status.state is ServiceState.ACTIVE
        assert daemon.is_running and not daemon.is_failed
        pid = daemon.running_pid()
        assert pid is not None
        assert Path(daemon.run_dir) == home / "services" / daemon.uuid
        assert httpx.get(f"{daemon.endpoint.url}/health").text == "ok"
        saved = json.loads((Path(daemon.run_dir) / "service.json").read_text())
        assert saved["uuid"] == daemon.uuid
        assert saved["status"]["state"] == "active"
        assert daemon.check_status() == (ServiceState.ACTIVE, "")
    finally:
        daemon.stop(timeout=10)
    assert daemon.is_stopped
    assert daemon.admin_state is ServiceState.INACTIVE
    assert process_start_time(pid) is None
    assert daemon.check_status()[0] is ServiceState.INACTIVE
    assert any("listening on" in line for line in daemon.get_logs())


def test_port_is_kept_across_restarts(home: Path) -> None:
    daemon = EchoDaemon()
    daemon.start(timeout=30)
    port = daemon.endpoint.port
    daemon.stop(timeout=10)
    daemon.start(timeout=30)
    try:
        assert daemon.endpoint.port == port
        assert daemon.is_running
    finally:
        daemon.stop(timeout=10)


def test_kill_9_is_seen_with_its_reason_and_start_recovers(home: Path) -> None:
    daemon = EchoDaemon(extra_env={"DAEMON_CHILD": "1"})
    daemon.start(timeout=30)
    pid = daemon.running_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    state, error = daemon.check_status()
    assert state is ServiceState.ERROR
    assert daemon.is_failed
    assert f"process {pid}" in error
    assert "behind the registry's back" in error
    assert "listening on" in error  # the log tail comes with it
    # The orphaned "worker" of the killed supervisor is gone too (it held the group).
    assert group_members(pid) == []
    daemon.start(timeout=30)
    try:
        assert daemon.is_running
        assert httpx.get(f"{daemon.endpoint.url}/health").status_code == 200
        assert daemon.running_pid() != pid
    finally:
        daemon.stop(timeout=10)


def test_a_reused_pid_is_not_taken_for_the_server(home: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        daemon = EchoDaemon(admin_state=ServiceState.ACTIVE)
        daemon.run_path.mkdir(parents=True)
        start_time = process_start_time(stranger.pid)
        assert start_time is not None
        (daemon.run_path / "pid.json").write_text(
            json.dumps({"pid": stranger.pid, "start_time": start_time - 1})
        )
        assert daemon.running_pid() is None
        state, error = daemon.check_status()
        assert state is ServiceState.ERROR
        assert f"its pid {stranger.pid} now belongs to another process" in error
        daemon.stop(timeout=5)
        assert stranger.poll() is None, "stop() must not touch a process that is not ours"
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_escalates_to_sigkill_after_the_timeout(home: Path) -> None:
    daemon = EchoDaemon(extra_env={"DAEMON_IGNORE_TERM": "1"})
    daemon.start(timeout=30)
    pid = daemon.running_pid()
    assert pid is not None
    daemon.stop(timeout=0.5)
    assert process_start_time(pid) is None
    assert daemon.is_stopped


def test_a_server_that_dies_on_start_reports_its_log(home: Path) -> None:
    daemon = EchoDaemon(extra_env={"DAEMON_FAIL": "1"})
    with pytest.raises(ServiceError, match="failed to start") as info:
        daemon.start(timeout=30)
    # The exit code is known unless something else in this process reaped the child.
    assert "exited with code 3" in str(info.value) or "is no longer running" in str(info.value)
    assert "DAEMON_FAIL is set" in str(info.value)
    assert daemon.is_failed
    assert "DAEMON_FAIL is set" in daemon.status.last_error
    assert daemon.running_pid() is None


def test_a_busy_port_is_named(home: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        daemon = EchoDaemon()
        daemon.endpoint = daemon.endpoint.model_copy(update={"port": port})
        with pytest.raises(ServiceError, match=f"port {port} on 127.0.0.1 is in use"):
            daemon.start(timeout=10)
        assert daemon.is_failed


def test_json_round_trip_gives_the_same_live_object(home: Path) -> None:
    daemon = EchoDaemon()
    daemon.start(timeout=30)
    try:
        text = daemon.to_json()
        again = Service.from_json(text)
        assert type(again) is EchoDaemon
        assert isinstance(again, LocalDaemonService)
        assert again.model_dump() == daemon.model_dump()
        assert again.to_json() == text
        assert again.check_status()[0] is ServiceState.ACTIVE
        assert again.running_pid() == daemon.running_pid()
        again.stop(timeout=10)
        assert daemon.check_status()[0] is ServiceState.INACTIVE
    finally:
        daemon.stop(timeout=10)


def test_from_json_refuses_what_is_not_a_service() -> None:
    with pytest.raises(ServiceError, match="Not a serialized service"):
        Service.from_json("[1]")
    with pytest.raises(ServiceError, match="is not a Service class"):
        Service.from_json(json.dumps({"type": "pathlib:Path"}))


def test_logs_tail_and_follow(home: Path) -> None:
    daemon = EchoDaemon()
    daemon.start(timeout=30)
    try:
        for _ in range(3):
            httpx.get(f"{daemon.endpoint.url}/x{_}")
        lines = list(daemon.get_logs(tail=2))
        assert len(lines) == 2
        follow = daemon.get_logs(follow=True)
        seen = [next(follow) for _ in range(3)]
        assert seen[0].startswith("--- shipyard")
        httpx.get(f"{daemon.endpoint.url}/late")
        while "request /late" not in next(follow):
            pass
        follow.close()
    finally:
        daemon.stop(timeout=10)


def test_tcp_health_check() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert TCPHealthCheck().check("127.0.0.1", port) == (True, "")
    ok, why = TCPHealthCheck(timeout=1).check("127.0.0.1", port)
    assert not ok
    assert f"127.0.0.1:{port}" in why


def test_errors_quote_only_the_latest_runs_log(tmp_path: Path) -> None:
    from shipyard.services.local_daemon import LocalDaemonService

    class Quiet(LocalDaemonService):
        def command(self) -> list[str]:
            return ["true"]

    daemon = Quiet(run_dir=str(tmp_path))
    daemon.log_path.write_text(
        "--- shipyard 2026-01-01: python -m server\nold failure\n"
        "--- shipyard 2026-01-02: python -m server\n" + "".join(f"line {i}\n" for i in range(12))
    )
    # The earlier run and the banner are left out; at most the last 8 lines.
    assert daemon._log_tail() == "\n".join(f"line {i}" for i in range(4, 12))
    daemon.log_path.write_text("--- shipyard 2026-01-01: x\nold\n--- shipyard 2026-01-02: y\nnew\n")
    assert daemon._log_tail() == "new"
