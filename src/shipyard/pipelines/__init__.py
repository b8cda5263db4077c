"""Pipelines: steps that pass artifacts, run in order by the local orchestrator.

Small on purpose: this serves deployment (train, evaluate, deploy, predict), it is not a
general workflow engine.
"""

from shipyard.pipelines._artifacts import Artifact, ArtifactStore
from shipyard.pipelines._context import StepContext, get_step_context
from shipyard.pipelines._environment import get_run, list_runs
from shipyard.pipelines._errors import (
    ArtifactError,
    PipelineDefinitionError,
    PipelineRunFailedError,
)
from shipyard.pipelines._materializers import Materializer
from shipyard.pipelines._pipeline import Pipeline, pipeline
from shipyard.pipelines._records import RunNotFoundError
from shipyard.pipelines._run import PipelineRunView, RunStatus, StepRunView, StepStatus
from shipyard.pipelines._step import OutputRef, Step, step

__all__ = [
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
