"""Continuous deployment from pipelines, for each engine, against the real tracking server:
``mlflow_model_registry_deployer_step`` (v1 by version, v2 by alias -> the same Service,
same UUID and URL; a broken v3 is refused, v2 keeps serving with ``last_error`` set), and
the plain ``model_deployer_step`` given an MLflow model directory as its artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from shipyard.deployers.mlflow import MLFlowDeploymentService, MLFlowModelDeployer
from shipyard.pipelines import PipelineRunFailedError, PipelineRunView, StepStatus, pipeline, step
from shipyard.services import Service
from shipyard.steps import mlflow_model_registry_deployer_step, model_deployer_step, prediction_step

from .conftest import Registry, activate_mlflow_stack

ROWS = np.array([[0.0], [1.0], [2.0], [3.0]])


@step
def rows(registry_rows: list[list[float]]) -> np.ndarray:
    return np.asarray(registry_rows)


@pipeline(name="registry-cd")
def registry_cd(engine: str, data: list[list[float]], version: str = "", alias: str = "") -> None:
    service = mlflow_model_registry_deployer_step(
        registry_model_name="clf",
        registry_model_version=version,
        alias=alias,
        timeout=300.0,
        config={"engine": engine},
    )
    prediction_step(service, rows(data))


class MLflowSklearnMaterializer:
    """A scikit-learn model saved as an MLflow model directory (``MLmodel``, pyfunc)."""

    name: ClassVar[str] = "mlflow-sklearn"

    def can_save(self, value: Any) -> bool:
        return hasattr(value, "predict") and type(value).__module__.startswith("sklearn")

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        import mlflow

        # The artifact directory exists already; MLflow writes into a fresh one inside it.
        mlflow.sklearn.save_model(value, uri, input_example=ROWS[:2])
        return {}

    def load(self, uri: str) -> Any:
        import mlflow

        return mlflow.sklearn.load_model(uri)


@step(materializers=[MLflowSklearnMaterializer()])
def fit(flip: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    labels = np.array([1, 1, 0, 0]) if flip else np.array([0, 0, 1, 1])
    return LogisticRegression().fit(ROWS, labels)


@step
def probe() -> np.ndarray:
    return ROWS


@pipeline(name="artifact-cd")
def artifact_cd(engine: str, flip: bool) -> None:
    service = model_deployer_step(
        fit(flip=flip), True, model_name="m", timeout=300.0, config={"engine": engine}
    )
    prediction_step(service, probe())


def _deployed(run: PipelineRunView, step_name: str) -> tuple[str, str, list[int]]:
    """(uuid, prediction URL, predictions) of one run."""
    metadata = run.steps[step_name].metadata
    predictions = [int(v) for v in np.asarray(run.steps["prediction_step"].load()).ravel()]
    return metadata["service_uuid"], metadata["prediction_url"], predictions


# Each engine: three server starts and two reloads (MLflow loads in each: minutes when busy).
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("engine", ["shipyard", "mlflow"])
def test_registry_step_and_artifact_step_update_in_place(
    home: Path, registry: Registry, engine: str
) -> None:
    activate_mlflow_stack(registry)
    data = registry.rows.tolist()
    step_name = "mlflow_model_registry_deployer_step"

    first = registry_cd(engine=engine, data=data, version="1")
    uuid, url, v1 = _deployed(first, step_name)
    assert first.steps[step_name].metadata["model_version"] == "1"

    alias = f"step-{engine}"
    registry.client().set_registered_model_alias(registry.name, alias, "2")  # type: ignore[attr-defined]
    second = registry_cd(engine=engine, data=data, alias=alias)
    assert _deployed(second, step_name) == (uuid, url, [1 - v for v in v1])
    assert second.steps[step_name].metadata["model_version"] == "2"
    served: Service = second.steps[step_name].load()
    assert served.uuid == uuid and served.is_running
    if engine == "mlflow":
        assert isinstance(served, MLFlowDeploymentService)

    with pytest.raises(PipelineRunFailedError) as caught:
        registry_cd(engine=engine, data=data, version="3")
    failed = caught.value.run.steps[step_name]
    assert failed.status is StepStatus.FAILED
    assert "models:/clf/3" in str(failed.error)
    deployer = MLFlowModelDeployer.get_active_model_deployer()
    after = deployer.get_model_server(uuid)
    assert after.is_running and after.model_version == "2"
    assert "models:/clf/3" in after.status.last_error
    # v2 still answers, through the step too.
    assert _deployed(registry_cd(engine=engine, data=data, alias=alias), step_name) == (
        uuid,
        url,
        [1 - v for v in v1],
    )

    # The plain model_deployer_step, given an MLflow model directory as its artifact.
    one = artifact_cd(engine=engine, flip=False)
    m_uuid, m_url, m_first = _deployed(one, "model_deployer_step")
    assert m_first == [0, 0, 1, 1] and m_uuid != uuid
    two = artifact_cd(engine=engine, flip=True)
    assert _deployed(two, "model_deployer_step") == (m_uuid, m_url, [1, 1, 0, 0])
    for server in deployer.find_model_server():
        deployer.delete_model_server(server.uuid)
