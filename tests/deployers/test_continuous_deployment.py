"""Continuous deployment: in-place updates, zero failed requests, broken models rejected."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx
import pytest

from shipyard.deployers.local import LocalModelDeployer, LocalModelServer
from shipyard.errors import DeploymentError
from shipyard.services import Service, ServiceState
from shipyard.services.process import process_start_time

from .conftest import Models, local_config


class Client(threading.Thread):
    """Sends requests in a loop until stopped, counting answers and failures."""

    def __init__(
        self, url: str, rows: list[list[float]], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = headers or {}
        self.body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [len(rows), len(rows[0])],
                    "datatype": "FP64",
                    "data": [v for row in rows for v in row],
                }
            ]
        }
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.answers: list[list[int]] = []

    def run(self) -> None:
        with httpx.Client(timeout=30, headers=self.headers) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(self.url, json=self.body)
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                    continue
                if response.status_code == 200:
                    self.ok += 1
                    self.answers.append(response.json()["outputs"][0]["data"])
                else:
                    self.failures.append(f"{response.status_code}: {response.text}")

    def wait_for(self, count: int) -> None:
        start = self.ok
        while self.ok < start + count and not self.failures:
            self.stop.wait(0.02)


def test_update_in_place_with_zero_failed_requests(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    first = deployer.deploy_model(local_config(models.a), timeout=300)
    assert isinstance(first, LocalModelServer)
    pid = first.running_pid()
    expected_a = models.expected_a()
    client = Client(str(first.prediction_url), models.rows.tolist(), first.request_headers())
    client.start()
    try:
        client.wait_for(5)
        second = deployer.deploy_model(local_config(models.b), replace=True, timeout=300)
        client.wait_for(5)
    finally:
        client.stop.set()
        client.join()
    assert client.failures == []
    assert client.ok >= 10
    # Same server, same URL, same process: the model was swapped inside it.
    assert isinstance(second, LocalModelServer)
    assert (second.uuid, second.prediction_url, second.running_pid()) == (
        first.uuid,
        first.prediction_url,
        pid,
    )
    assert second.config.model_uri == models.b
    assert client.answers[0] == expected_a
    assert client.answers[-1] == [1 - v for v in expected_a]
    # Every answer came wholly from one model or the other.
    assert all(a in (expected_a, [1 - v for v in expected_a]) for a in client.answers)
    [registered] = deployer.find_model_server(pipeline_name="train")
    assert registered.config.model_uri == models.b


def test_a_broken_model_leaves_the_old_one_serving(
    home: Path, models: Models, tmp_path: Path
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    model_dir = tmp_path / "model"
    shutil.copytree(models.a, model_dir)
    service = deployer.deploy_model(local_config(str(model_dir)), timeout=300)
    with pytest.raises(DeploymentError) as info:
        deployer.deploy_model(local_config(models.broken), replace=True, timeout=300)
    message = str(info.value)
    assert service.uuid in message
    assert models.broken in message
    assert "previous model keeps serving" in message
    # The old model still answers, at the same URL.
    assert service.predict(models.rows).tolist() == models.expected_a()
    [found] = deployer.find_model_server(model_name="clf")
    assert found.is_running
    assert found.config.model_uri == str(model_dir)
    assert models.broken in found.status.last_error
    assert found.predict(models.rows).tolist() == models.expected_a()

    # The service JSON comes back as the same live object.
    again = Service.from_json(found.to_json())
    assert type(again) is LocalModelServer
    assert again.model_dump() == found.model_dump()
    assert again.check_status() == (ServiceState.ACTIVE, found.status.last_error)
    assert again.predict(models.rows).tolist() == models.expected_a()

    # A model saved again at the same path is deployed again, in place.
    shutil.rmtree(model_dir)
    shutil.copytree(models.b, model_dir)
    updated = deployer.deploy_model(local_config(str(model_dir)), replace=True, timeout=300)
    assert updated.uuid == service.uuid
    assert updated.predict(models.rows).tolist() == [1 - v for v in models.expected_a()]


def test_same_config_replace_false_and_duplicates(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    first = deployer.deploy_model(local_config(models.a), timeout=300)
    pid = first.running_pid()  # type: ignore[attr-defined]

    again = deployer.deploy_model(local_config(models.a), replace=True, timeout=300)
    assert again.uuid == first.uuid
    assert again.running_pid() == pid  # type: ignore[attr-defined]  # returned as it is, not restarted

    beside = deployer.deploy_model(local_config(models.b), replace=False, timeout=300)
    assert beside.uuid != first.uuid
    assert beside.endpoint.port != first.endpoint.port
    assert beside.predict(models.rows).tolist() == [1 - v for v in models.expected_a()]
    assert len(deployer.find_model_server(model_name="clf", running=True)) == 2

    # replace=True again: one server is updated in place, the duplicate is removed.
    kept = deployer.deploy_model(local_config(models.a), replace=True, timeout=300)
    assert kept.uuid in (first.uuid, beside.uuid)
    removed = beside if kept.uuid == first.uuid else first
    remaining = deployer.find_model_server(model_name="clf")
    assert [s.uuid for s in remaining] == [kept.uuid]
    assert remaining[0].predict(models.rows).tolist() == models.expected_a()
    assert not (home / "services" / removed.uuid).exists()


def test_a_failed_first_deploy_leaves_nothing_behind(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    with pytest.raises(DeploymentError, match="the server failed to start: ") as info:
        deployer.deploy_model(local_config(models.broken), timeout=300)
    message = str(info.value)
    # One line naming the cause, not the whole server log.
    assert "\n" not in message and "--- shipyard" not in message
    assert "not a joblib file" in message or "Loading model" in message or models.broken in message
    # Neither a process nor a dead entry to delete by hand.
    assert deployer.find_model_server(model_name="clf") == []
    assert list((home / "services").iterdir()) == []

    # A local path that does not exist is refused before any process is started.
    missing = str(home / "no-such-model")
    with pytest.raises(DeploymentError, match=f"{missing} does not exist"):
        deployer.deploy_model(local_config(missing), timeout=300)
    assert deployer.find_model_server() == []


def test_kill_9_shows_the_reason_and_start_recovers_the_url(home: Path, models: Models) -> None:
    import os
    import signal

    deployer = LocalModelDeployer.get_active_model_deployer()
    service = deployer.deploy_model(local_config(models.a), timeout=300)
    url = service.prediction_url
    pid = service.running_pid()  # type: ignore[attr-defined]
    start_time = process_start_time(pid)
    os.kill(pid, signal.SIGKILL)
    while process_start_time(pid) == start_time:
        threading.Event().wait(0.05)

    [found] = deployer.find_model_server(model_name="clf")
    assert found.status.state in (ServiceState.ERROR, ServiceState.INACTIVE)
    assert found.is_failed
    assert f"process {pid}" in found.status.last_error
    assert "behind the registry's back" in found.status.last_error
    # The wait status is known when nothing else in this process reaped the child first.
    assert (
        "killed by SIGKILL" in found.status.last_error
        or "is no longer running" in found.status.last_error
    )
    with pytest.raises(httpx.HTTPError):
        httpx.get(str(url).replace("/infer", "/ready"), timeout=2)

    restarted = deployer.start_model_server(found.uuid[:8], timeout=300)
    assert restarted.uuid == service.uuid
    assert restarted.prediction_url == url
    assert restarted.is_running
    assert restarted.predict(models.rows).tolist() == models.expected_a()


def test_a_change_a_reload_cannot_make_restarts_on_the_same_url(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    first = deployer.deploy_model(local_config(models.a, workers=1), timeout=300)
    assert isinstance(first, LocalModelServer)
    pid = first.running_pid()
    changed = deployer.deploy_model(local_config(models.b, workers=2), timeout=300)
    assert isinstance(changed, LocalModelServer)
    assert (changed.uuid, changed.prediction_url) == (first.uuid, first.prediction_url)
    assert changed.workers == 2
    assert changed.running_pid() not in (None, pid)  # a new process: workers cannot change in place
    assert process_start_time(pid) is None  # type: ignore[arg-type]
    assert changed.predict(models.rows).tolist() == [1 - v for v in models.expected_a()]
