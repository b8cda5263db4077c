"""Stopping a model server lets the requests in flight finish (SIGTERM, then drain)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.services.process import process_start_time
from shipyard.testing import wait_until

from .slow_predictor import Slow


def test_stop_lets_an_in_flight_request_finish(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("DEPLOYER_TEST_MARKS", str(marks))  # inherited by the server
    model = shipyard.save_model(None, tmp_path / "slow", predictor=Slow)
    deployer = LocalModelDeployer.get_active_model_deployer()
    service = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(model), model_name="slow"), timeout=300
    )
    assert isinstance(service, LocalModelServer)
    pid = service.running_pid()
    assert pid is not None

    answers: list[httpx.Response | Exception] = []

    def request() -> None:
        body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [3.0]}]}
        try:
            answers.append(
                httpx.post(
                    str(service.prediction_url),
                    json=body,
                    headers=service.request_headers(),
                    timeout=60,
                )
            )
        except httpx.HTTPError as err:
            answers.append(err)

    client = threading.Thread(target=request)
    client.start()

    def inside_predict() -> bool:
        assert client.is_alive() or answers, "the request ended before it started"
        return any(marks.iterdir())

    wait_until(inside_predict, "the request to be inside predict()")
    deployer.stop_model_server(service.uuid, timeout=60)
    client.join()

    [answer] = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [6.0]
    assert process_start_time(pid) is None
    [stopped] = deployer.find_model_server(model_name="slow")
    assert stopped.is_stopped
