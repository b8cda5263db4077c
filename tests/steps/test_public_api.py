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
        "predictor",
    ]
    for name in shipyard.steps.__all__:
        candidate = getattr(shipyard.steps, name)
        assert isinstance(candidate, Step)
        assert candidate.enable_cache is False
