"""``shipyard deploy`` as a user runs it: the phases on a terminal, nothing but JSON with
``--output json``, and after Ctrl-C a line saying what it left running."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.services import process
from shipyard.testing import wait_until

from .slow_models import answer_of, slow_model

CLI = [sys.executable, "-m", "shipyard.cli.main"]


def _on_a_terminal(*args: str, timeout: float = 600) -> tuple[int, str]:
    """Run ``shipyard ARGS`` with a pseudo-terminal as stdout and stderr."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the terminal closed: the process is done
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, b"".join(chunks).decode(errors="replace").replace("\r", "")


def test_deploy_shows_its_phases_on_a_terminal_and_only_json_with_output_json(
    home: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    one = slow_model(tmp_path, "one", answer=1.0, delay=0.0, marks=marks)
    two = slow_model(tmp_path, "two", answer=2.0, delay=0.0, marks=marks)

    code, shown = _on_a_terminal("deploy", one, "--name", "p", "--workers", "1", "--access-log")
    assert code == 0, shown
    for phase in ("copying the model", "loading the model", "health check passed"):
        assert phase in shown, shown
    assert "serves 'p'" in shown

    code, shown = _on_a_terminal("deploy", two, "--name", "p")
    assert code == 0, shown
    assert "loading the new model in every worker" in shown
    assert "switched to the new model" in shown

    # The service log: the swap (old -> new, fingerprints) and, with --access-log (kept
    # by the redeploy that left it out), each request.
    [server] = LocalModelDeployer.get_active_model_deployer().find_model_server(model_name="p")
    assert isinstance(server, LocalModelServer) and server.config.access_log
    assert answer_of(server) == 2.0
    log = server.log_path
    wait_until(lambda: '"POST /v2/models/p/infer" 200' in log.read_text(), "the access line")
    swaps = [line for line in log.read_text().splitlines() if "swapped model 'p'" in line]
    assert len(swaps) == 1 and "fingerprint" in swaps[0], log.read_text()
    assert "snapshots" in swaps[0]  # the server loads the pinned copies

    code, shown = _on_a_terminal("deploy", one, "--name", "p", "--output", "json")
    assert code == 0, shown
    assert json.loads(shown)["model_uri"] == one  # nothing but the JSON document


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when_loading(args: list[str], marks: Path, loads_before: int) -> tuple[int, str]:
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as on a terminal: a run started in the background of a non-interactive
        # shell ignores SIGINT, and its children would inherit that and never stop.
        preexec_fn=_default_sigint,
    )
    try:
        wait_until(lambda: len(list(marks.iterdir())) > loads_before, "the load to start", 300)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out + err


def test_ctrl_c_during_a_first_deploy_leaves_nothing_and_says_so(
    home: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    slow = slow_model(tmp_path, "slow", answer=2.0, delay=120.0, marks=marks)
    code, said = _interrupt_when_loading(["deploy", slow, "--name", "k2"], marks, 0)
    assert code == 130, said
    assert "Interrupted: no model server serves 'k2'" in said
    assert "Traceback" not in said
    assert LocalModelDeployer.get_active_model_deployer().find_model_server(model_name="k2") == []
    [mark] = list(marks.iterdir())
    worker = int(mark.name.split("-")[1])
    wait_until(lambda: process.process_start_time(worker) is None, "the worker to be stopped")


def test_ctrl_c_during_an_update_keeps_the_old_model_and_says_so(
    home: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    fast = slow_model(tmp_path, "fast", answer=1.0, delay=0.0, marks=marks)
    slow = slow_model(tmp_path, "slow", answer=2.0, delay=120.0, marks=marks)
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=fast, model_name="k3", workers=1), timeout=300
    )
    assert isinstance(server, LocalModelServer)
    loads = len(list(marks.iterdir()))

    code, said = _interrupt_when_loading(["deploy", slow, "--name", "k3"], marks, loads)
    assert code == 130, said
    assert f"Interrupted: model server {server.uuid} is active and serves {fast}" in said
    assert "Traceback" not in said
    [now] = deployer.find_model_server(model_name="k3")
    assert isinstance(now, LocalModelServer)
    assert now.config.model_uri == fast and now.intent is None
    assert answer_of(now) == 1.0
