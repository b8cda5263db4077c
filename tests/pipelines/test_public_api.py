"""The public API of shipyard.pipelines, pinned: a change here is a deliberate one."""

from __future__ import annotations

import shipyard.pipelines


def test_public_names() -> None:
    assert sorted(shipyard.pipelines.__all__) == [
        "Artifact",
        "ArtifactError",
        "ArtifactStore",
        "Materializer",
        "OutputRef",
        "Pipeline",
        "PipelineDefinitionError",
        "PipelineRunFailedError",
        "PipelineRunView",
        "RunNotFoundError",
        "RunStatus",
        "Step",
        "StepContext",
        "StepRunView",
        "StepStatus",
        "get_run",
        "get_step_context",
        "list_runs",
        "pipeline",
        "step",
    ]
    for name in shipyard.pipelines.__all__:
        assert getattr(shipyard.pipelines, name) is not None
