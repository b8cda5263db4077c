"""deployment_trigger: a metric against a threshold, recorded on the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.pipelines import pipeline, step
from shipyard.steps import deployment_trigger


@step
def metric(value: float) -> float:
    return value


@pipeline
def decide(value: float, threshold: float, higher_is_better: bool) -> None:
    deployment_trigger(metric(value), threshold=threshold, higher_is_better=higher_is_better)


@pytest.mark.parametrize(
    ("value", "threshold", "higher_is_better", "expected"),
    [
        (0.95, 0.9, True, True),
        (0.9, 0.9, True, True),
        (0.85, 0.9, True, False),
        (0.1, 0.2, False, True),
        (0.3, 0.2, False, False),
    ],
)
def test_threshold_decides_and_the_decision_is_recorded_on_the_run(
    home: Path, value: float, threshold: float, higher_is_better: bool, expected: bool
) -> None:
    run = decide(value, threshold, higher_is_better)
    assert run.steps["deployment_trigger"].load() is expected
    decision = run.metadata["deployment_decision"]
    assert decision["deploy"] is expected
    assert decision["metric"] == value
    assert decision["threshold"] == threshold
    assert decision["reason"].startswith("deploy:" if expected else "keep:")


def test_the_trigger_is_never_served_from_the_cache(home: Path) -> None:
    decide(0.95, 0.9, True)
    again = decide(0.95, 0.9, True)
    assert again.steps["metric"].status.value == "cached"
    assert again.steps["deployment_trigger"].status.value == "completed"
    assert again.metadata["deployment_decision"]["deploy"] is True
