"""The standard steps, pinned: each is a step that never caches (they deal in live servers)."""

from __future__ import annotations

import shipyard.steps
from shipyard.pipelines import Step


def test_standard_steps() -> None:
    assert sorted(shipyard.steps.__all__) == [
        "deployment_trigger",
        "mlflow_model_registry_deployer_step",
        "model_deployer_step",
        "prediction_service_loader",
        "prediction_step",
        "predictor",
    ]
    for name in shipyard.steps.__all__:
        candidate = getattr(shipyard.steps, name)
        assert isinstance(candidate, Step)
        assert candidate.enable_cache is False


def test_predictor_is_the_old_name_of_prediction_step() -> None:
    # Pipelines written before the rename keep working and keep their recorded step name.
    assert shipyard.steps.predictor.func is shipyard.steps.prediction_step.func
    assert shipyard.steps.predictor.name == "predictor"
    assert shipyard.steps.prediction_step.name == "prediction_step"
