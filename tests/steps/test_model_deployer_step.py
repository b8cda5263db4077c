"""model_deployer_step, prediction_service_loader, predictor, and the Service round trip
through the artifact store, against real local model servers.

One long scenario on purpose: every model-server start costs seconds (the server imports
scikit-learn), so the checks share the servers they need.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import httpx
import numpy as np
import pytest

from shipyard.deployers.base import ModelDeployer
from shipyard.pipelines import (
    Artifact,
    PipelineRunFailedError,
    PipelineRunView,
    StepStatus,
    pipeline,
    step,
)
from shipyard.services import Service, ServiceState
from shipyard.steps import model_deployer_step, prediction_service_loader, predictor

X = np.array([[0.0], [1.0], [2.0], [3.0]])


@step
def fit(flip: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    y = np.array([1, 1, 0, 0]) if flip else np.array([0, 0, 1, 1])
    return LogisticRegression().fit(X, y)


class BrokenModelMaterializer:
    """Writes a model directory whose model file is garbage: the server cannot load it."""

    name: ClassVar[str] = "broken-model"

    def can_save(self, value: Any) -> bool:
        return isinstance(value, str) and value == "broken"

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        with fsspec.open(posixpath.join(uri, "shipyard.yaml"), "w") as handle:
            handle.write("format: sklearn\nmodel_file: model.joblib\nserialization: joblib\n")
        with fsspec.open(posixpath.join(uri, "model.joblib"), "wb") as handle:
            handle.write(b"this is not a joblib file")
        return {}

    def load(self, uri: str) -> Any:
        return "broken"


@step(materializers=[BrokenModelMaterializer()])
def broken() -> str:
    return "broken"


@step
def probe() -> np.ndarray:
    return np.array([[0.0], [3.0]])


@step
def service_file(service: Artifact) -> str:
    return (Path(service.uri) / "service.json").read_text()


@pipeline(name="deploys")
def deploys(flip: bool, decision: bool) -> None:
    service = model_deployer_step(fit(flip=flip), decision, model_name="m", timeout=60.0)
    predictor(service, probe())
    service_file(service)


@pipeline(name="deploys")
def deploys_broken() -> None:
    service = model_deployer_step(broken(), True, model_name="m", timeout=30.0)
    predictor(service, probe())


@pipeline(name="finds")
def finds(running: bool | None) -> None:
    service = prediction_service_loader(
        pipeline_name="deploys", step_name="model_deployer_step", model_name="m", running=running
    )
    predictor(service, probe())


def _server(run_step: Any) -> tuple[str, str]:
    summary = run_step.output.summary
    return summary["uuid"], summary["prediction_url"]


def _check_service_round_trip(run: PipelineRunView) -> None:
    """service.json in the artifact store, the live server when read back."""
    deployed = run.steps["model_deployer_step"]
    assert deployed.output.materializer == "service"
    saved = Service.from_json(run.steps["service_file"].load())
    assert saved.uuid == deployed.output.summary["uuid"]
    loaded = deployed.load()
    assert type(loaded) is type(saved) and type(loaded).__name__ == "LocalModelServer"
    assert loaded.uuid == saved.uuid
    assert loaded.is_running
    assert loaded.prediction_url == deployed.output.summary["prediction_url"]
    assert loaded.config.pipeline_name == "deploys"
    assert loaded.config.pipeline_step_name == "model_deployer_step"
    assert loaded.config.pipeline_run_id == run.id
    assert loaded.prediction_url is not None
    ready = httpx.get(
        loaded.prediction_url.rsplit("/infer", 1)[0] + "/ready",
        headers=loaded.request_headers(),
        timeout=10,
    )
    assert ready.status_code == 200
    # The server wants its token, so the predictor step (and the finder's Service) sent it.
    assert httpx.post(loaded.prediction_url, json={}, timeout=10).status_code == 401


def test_deploy_update_keep_find_and_the_service_round_trip(home: Path) -> None:
    first = deploys(flip=False, decision=True)
    # A later step got the live server: its predictions came from real requests.
    np.testing.assert_array_equal(first.steps["predictor"].load(), [0, 1])
    uuid, url = _server(first.steps["model_deployer_step"])
    _check_service_round_trip(first)

    # Yes again, with another model: the same server (UUID and URL) now answers with it.
    second = deploys(flip=True, decision=True)
    assert _server(second.steps["model_deployer_step"]) == (uuid, url)
    np.testing.assert_array_equal(second.steps["predictor"].load(), [1, 0])

    # No: the model is not deployed; the last good server is returned, still serving.
    third = deploys(flip=False, decision=False)
    assert _server(third.steps["model_deployer_step"]) == (uuid, url)
    assert third.steps["model_deployer_step"].metadata["deployed"] is False
    np.testing.assert_array_equal(third.steps["predictor"].load(), [1, 0])

    # A model that cannot load: the step fails with the cause, the old one keeps serving.
    with pytest.raises(PipelineRunFailedError) as caught:
        deploys_broken()
    failed = caught.value.run.steps["model_deployer_step"]
    assert failed.status is StepStatus.FAILED
    assert "DeploymentError" in (failed.error or "")
    assert caught.value.run.steps["predictor"].status is StepStatus.SKIPPED
    deployer = ModelDeployer.get_active_model_deployer()
    servers = deployer.find_model_server(pipeline_name="deploys")
    assert [s.uuid for s in servers] == [uuid]
    assert servers[0].is_running
    assert servers[0].prediction_url == url
    np.testing.assert_array_equal(servers[0].predict(np.array([[0.0], [3.0]])), [1, 0])

    # Another pipeline finds it by pipeline, step and model name.
    found = finds(running=True)
    assert _server(found.steps["prediction_service_loader"]) == (uuid, url)
    np.testing.assert_array_equal(found.steps["predictor"].load(), [1, 0])

    # Stopped: "running" finds nothing and says how to look; None finds it; predictor refuses.
    deployer.stop_model_server(uuid, timeout=30.0)
    with pytest.raises(PipelineRunFailedError) as caught:
        finds(running=True)
    error = caught.value.run.steps["prediction_service_loader"].error or ""
    assert "No running model server was deployed by pipeline 'deploys'" in error
    with pytest.raises(PipelineRunFailedError) as caught:
        finds(running=None)
    assert caught.value.run.steps["prediction_service_loader"].status is StepStatus.COMPLETED
    assert "is inactive" in (caught.value.run.steps["predictor"].error or "")

    # A "no" with a stopped server starts it again, same URL.
    restarted = deploys(flip=False, decision=False)
    assert _server(restarted.steps["model_deployer_step"]) == (uuid, url)
    np.testing.assert_array_equal(restarted.steps["predictor"].load(), [1, 0])

    # Deleted behind the artifact's back: it loads as an inactive Service that says so.
    deployer.delete_model_server(uuid)
    gone = first.steps["model_deployer_step"].load()
    assert isinstance(gone, Service)
    assert gone.uuid == uuid
    assert gone.status.state is ServiceState.INACTIVE
    assert not gone.is_running
    assert "was deleted" in gone.status.last_error
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=2)


def test_no_with_nothing_deployed_fails_with_the_reason(home: Path) -> None:
    with pytest.raises(PipelineRunFailedError) as caught:
        deploys(flip=False, decision=False)
    error = caught.value.run.steps["model_deployer_step"].error or ""
    assert "The deployment trigger said no" in error
    assert "has no model server for model 'm'" in error
