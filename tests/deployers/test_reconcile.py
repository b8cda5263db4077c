"""Desired state first, then reconcile: after an interrupted update (a timeout, a killed
CLI) the next command leaves the registry and the server in agreement, and redeploying any
model converges to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.errors import DeploymentError
from shipyard.serving.control import send_command
from shipyard.testing import wait_until

from .slow_models import answer_of, slow_model

LOAD_S = 4.0


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


def _config(uri: str) -> LocalDeploymentConfig:
    return LocalDeploymentConfig(
        model_uri=uri, model_name="k1", pipeline_name="p", pipeline_step_name="s"
    )


def _served_uri(server: LocalModelServer) -> str:
    answer = send_command(server.control_socket, {"op": "status"}, timeout=30)
    [model] = answer["models"]
    # The server loads the copy pinned at deploy, which stands for the URI it was made from.
    assert model["uri"] == server.model_snapshot
    served = server.served_model()
    assert served is not None
    return served.model_uri


def _wait_for_load_started(marks: Path, count: int) -> None:
    wait_until(lambda: len(list(marks.iterdir())) >= count, "the slow model to start loading", 60)


def _serving_fast(tmp_path: Path, marks: Path) -> tuple[str, str, LocalModelDeployer]:
    """A fast and a slow-loading model; the fast one deployed as ``k1``."""
    fast = slow_model(tmp_path, "fast", answer=1.0, delay=0.0, marks=marks)
    slow = slow_model(tmp_path, "slow", answer=2.0, delay=LOAD_S, marks=marks)
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(_config(fast), timeout=120)
    assert isinstance(server, LocalModelServer)
    return fast, slow, deployer


def test_update_past_its_timeout_is_abandoned_and_the_registry_agrees(
    home: Path, tmp_path: Path, marks: Path
) -> None:
    fast, slow, deployer = _serving_fast(tmp_path, marks)

    with pytest.raises(DeploymentError):
        deployer.deploy_model(_config(slow), timeout=1.5)
    # Long enough for the slow load to finish: a reload nobody waits for any more must
    # not take effect behind the registry's back.
    time.sleep(LOAD_S + 1.5)
    [now] = deployer.find_model_server(model_name="k1")
    assert isinstance(now, LocalModelServer)
    assert answer_of(now) == 1.0
    assert _served_uri(now) == now.config.model_uri == fast
    assert now.intent is None

    # Redeploying either model converges to it.
    updated = deployer.deploy_model(_config(slow), timeout=120)
    assert isinstance(updated, LocalModelServer)
    assert answer_of(updated) == 2.0 and updated.config.model_uri == slow
    back = deployer.deploy_model(_config(fast), timeout=120)
    assert isinstance(back, LocalModelServer)
    assert answer_of(back) == 1.0 and _served_uri(back) == back.config.model_uri == fast


def _deploy_in_child(home: Path, uri: str, timeout: float) -> subprocess.Popen[bytes]:
    script = textwrap.dedent(
        f"""
        from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer
        deployer = LocalModelDeployer.get_active_model_deployer()
        deployer.deploy_model(
            LocalDeploymentConfig(model_uri={uri!r}, model_name="k1", pipeline_name="p",
                                  pipeline_step_name="s"),
            timeout={timeout},
        )
        """
    )
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", script], env=env)


def test_killed_cli_mid_update_is_reconciled_by_the_next_command(
    home: Path, tmp_path: Path, marks: Path
) -> None:
    fast, slow, deployer = _serving_fast(tmp_path, marks)
    _wait_for_load_started(marks, 1)

    child = _deploy_in_child(home, slow, timeout=120)
    try:
        _wait_for_load_started(marks, 2)  # the update is inside the worker's load()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)

    # The next command (a listing) reconciles; a while later the two still agree.
    [listed] = deployer.find_model_server(model_name="k1")
    assert isinstance(listed, LocalModelServer)
    time.sleep(LOAD_S + 1.5)
    [later] = deployer.find_model_server(model_name="k1")
    assert isinstance(later, LocalModelServer)
    assert _served_uri(later) == later.config.model_uri
    assert answer_of(later) == (1.0 if later.config.model_uri == fast else 2.0)
    assert later.intent is None
    assert "interrupted" in later.status.last_error

    # And a redeploy of either model converges.
    again = deployer.deploy_model(_config(slow), timeout=120)
    assert isinstance(again, LocalModelServer)
    assert answer_of(again) == 2.0 and _served_uri(again) == again.config.model_uri == slow


def test_describe_shows_a_change_under_way(home: Path, tmp_path: Path, marks: Path) -> None:
    fast = slow_model(tmp_path, "fast", answer=1.0, delay=0.0, marks=marks)
    slow = slow_model(tmp_path, "slow", answer=2.0, delay=LOAD_S, marks=marks)
    deployer = LocalModelDeployer.get_active_model_deployer()
    deployer.deploy_model(_config(fast), timeout=120)
    _wait_for_load_started(marks, 1)
    child = _deploy_in_child(home, slow, timeout=120)
    try:
        _wait_for_load_started(marks, 2)
        [during] = deployer.find_model_server(model_name="k1")
        assert during.intent is not None and during.intent.op == "update"
        assert during.config.model_uri == fast  # the record changes once the server has
        assert child.wait(timeout=120) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=60)
    [after] = deployer.find_model_server(model_name="k1")
    assert after.intent is None and after.config.model_uri == slow


def test_killed_cli_mid_delete_is_finished_by_the_next_command(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from shipyard.store import Store

    from .slow_predictor import Slow

    slow_marks = tmp_path / "slow-marks"
    slow_marks.mkdir()
    monkeypatch.setenv("DEPLOYER_TEST_MARKS", str(slow_marks))  # inherited by the server
    model = shipyard.save_model(None, tmp_path / "slow", predictor=Slow)
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(_config(str(model)), timeout=120)
    assert isinstance(server, LocalModelServer)

    def in_flight() -> None:  # keeps the server draining for a while once told to stop
        body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [6.0]}]}
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                str(server.prediction_url), json=body, headers=server.request_headers(), timeout=60
            )

    request = threading.Thread(target=in_flight, daemon=True)
    request.start()
    _wait_for_load_started(slow_marks, 1)
    script = textwrap.dedent(
        f"""
        from shipyard.deployers.local import LocalModelDeployer
        LocalModelDeployer.get_active_model_deployer().delete_model_server({server.uuid!r})
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "SHIPYARD_HOME": str(home)}
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # the delete is under way: the server was told to stop
            with Store.open() as store:
                record = store.get_service(server.uuid)
            if record is not None and "pending_shutdown" in record.body:
                break
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert deployer.find_model_server(model_name="k1") == []
    request.join(timeout=60)


def _cli(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "200"}
    command = [sys.executable, "-m", "shipyard.cli.main", *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _cli_done(home: Path, *args: str) -> tuple[int, str, str]:
    child = _cli(home, *args)
    out, err = child.communicate(timeout=300)
    return child.returncode, out, err


def _agree(home: Path, fast: str, slow: str) -> str:
    """What `describe -O json` records and what `predict` answers are the same model;
    returns its URI."""
    code, out, err = _cli_done(home, "model-deployer", "models", "describe", "k1", "-O", "json")
    assert code == 0, err
    described = json.loads(out)
    assert described["pending_change"] is None and described["state"] == "active"
    code, out, err = _cli_done(home, "predict", "k1", "--data", "[[1.0]]", "-O", "json")
    assert code == 0, err
    answered = {1.0: fast, 2.0: slow}[json.loads(out)["predictions"][0]]
    assert described["config"]["model_uri"] == answered, (described, answered)
    return answered


def test_the_cli_timed_out_or_killed_mid_update_leaves_describe_and_predict_agreeing(
    home: Path, tmp_path: Path, marks: Path
) -> None:
    # As a user: `shipyard deploy` with a short --timeout, then `shipyard deploy` killed
    # with SIGKILL while the server loads the new model; `describe` and `predict` agree.
    fast = slow_model(tmp_path, "fast", answer=1.0, delay=0.0, marks=marks)
    slow = slow_model(tmp_path, "slow", answer=2.0, delay=LOAD_S, marks=marks)
    code, _, err = _cli_done(home, "deploy", fast, "--name", "k1", "-O", "json")
    assert code == 0, err

    code, _, err = _cli_done(home, "deploy", slow, "--name", "k1", "--timeout", "1.5")
    assert code == 1 and "keeps serving" in err, err
    assert err.count("keeps serving") == 1, err  # said once, not once per layer
    time.sleep(LOAD_S + 1.5)  # an abandoned load that finished must not switch the model
    assert _agree(home, fast, slow) == fast

    loads = len(list(marks.iterdir()))
    child = _cli(home, "deploy", slow, "--name", "k1", "--timeout", "120")
    try:
        _wait_for_load_started(marks, loads + 1)  # inside the worker's load()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.communicate(timeout=60)
    _agree(home, fast, slow)
    time.sleep(LOAD_S + 1.5)
    _agree(home, fast, slow)

    code, _, err = _cli_done(home, "deploy", slow, "--name", "k1", "-O", "json")
    assert code == 0, err
    assert _agree(home, fast, slow) == slow
