"""A Service through the artifact store: saved as service.json, loaded as the live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shipyard.deployers.base import ModelDeployer
from shipyard.pipelines import Artifact, pipeline, step
from shipyard.services import Service, ServiceState
from shipyard.steps import model_deployer_step, predictor


@step
def fit() -> Any:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    return LogisticRegression().fit(x, np.array([0, 0, 1, 1]))


@step
def rows() -> np.ndarray:
    return np.array([[0.0], [3.0]])


@step
def service_file(service: Artifact) -> str:
    return (Path(service.uri) / "service.json").read_text()


@pipeline
def serve_and_ask() -> None:
    service = model_deployer_step(fit(), True, model_name="tiny", timeout=60.0)
    predictor(service, rows())
    service_file(service)


def test_service_round_trip_through_the_artifact_store(shipyard_home: Path) -> None:
    run = serve_and_ask()
    deployed = run.steps["model_deployer_step"]
    artifact = deployed.output
    assert artifact.materializer == "service"
    # What is on disk is the Service's own JSON.
    saved = Service.from_json(run.steps["service_file"].load())
    assert saved.uuid == artifact.summary["uuid"]

    # A later step got the live server: its predictions came from real requests.
    np.testing.assert_array_equal(run.steps["predictor"].load(), [0, 1])

    loaded = deployed.load()
    assert isinstance(loaded, Service)
    assert type(loaded).__name__ == "LocalModelServer"
    assert loaded.uuid == saved.uuid
    assert loaded.is_running
    assert loaded.prediction_url == artifact.summary["prediction_url"]
    assert loaded.config.pipeline_name == "serve_and_ask"
    assert loaded.config.pipeline_step_name == "model_deployer_step"
    assert loaded.config.pipeline_run_id == run.id
    assert loaded.prediction_url is not None
    ready = httpx.get(loaded.prediction_url.rsplit("/infer", 1)[0] + "/ready", timeout=10)
    assert ready.status_code == 200
    np.testing.assert_array_equal(loaded.predict(np.array([[3.0]])), [1])

    # Deleted behind the artifact's back: it loads as an inactive Service that says so.
    deployer = ModelDeployer.get_active_model_deployer()
    deployer.delete_model_server(loaded.uuid)
    gone = deployed.load()
    assert isinstance(gone, Service)
    assert gone.uuid == loaded.uuid
    assert gone.status.state is ServiceState.INACTIVE
    assert not gone.is_running
    assert "was deleted" in gone.status.last_error
    with pytest.raises(httpx.HTTPError):
        httpx.get(str(loaded.prediction_url), timeout=2)
