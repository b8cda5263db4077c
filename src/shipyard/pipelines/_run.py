"""What a pipeline run looks like once recorded: runs, step runs, and their statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shipyard.pipelines._artifacts import Artifact
from shipyard.pipelines._errors import ArtifactError
from shipyard.pipelines._materializers import Materializer, materializer_named

__all__ = ["PipelineRunView", "RunStatus", "StepRunView", "StepStatus"]


class RunStatus(StrEnum):
    RUNNING = "running"  # steps are being executed
    COMPLETED = "completed"  # every step completed or was served from the cache
    FAILED = "failed"  # a step raised (or the run was interrupted); see the step's error


class StepStatus(StrEnum):
    RUNNING = "running"  # the step function is executing
    COMPLETED = "completed"  # it ran and its outputs are in the artifact store
    CACHED = "cached"  # it did not run: an earlier run's outputs for the same key were reused
    FAILED = "failed"  # it raised; `error` says what
    SKIPPED = "skipped"  # it did not run because a step it needs failed


@dataclass(frozen=True)
class StepRunView:
    """One step of one run, as recorded."""

    id: str
    name: str
    status: StepStatus
    started_at: datetime | None
    ended_at: datetime | None
    cache_key: str | None
    params: dict[str, Any]
    inputs: dict[str, str]
    """Input parameter name -> ``step.output`` it came from."""
    outputs: dict[str, Artifact]
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    cached_from: str | None = None
    """The step run whose outputs a cached step reused."""
    materializers: tuple[Materializer, ...] = field(default=(), repr=False, compare=False)
    """Asked before the built-in ones by ``load``: the store this run was read from
    reads a Service output back (a ``ServiceMaterializer`` bound to it)."""

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (None while running or when skipped)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def output(self) -> Artifact:
        """The single output of a one-output step."""
        if len(self.outputs) != 1:
            raise ArtifactError(
                f"Step '{self.name}' has outputs {sorted(self.outputs)}; pick one by name "
                "from `.outputs`."
            )
        return next(iter(self.outputs.values()))

    def load(self, output: str | None = None) -> Any:
        """Read an output back from the artifact store (the only one when not named)."""
        artifact = self.output if output is None else self.outputs[output]
        return materializer_named(artifact.materializer, self.materializers).load(artifact.uri)


@dataclass(frozen=True)
class PipelineRunView:
    """One run of a pipeline, with its steps in execution order."""

    id: str
    pipeline_name: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    steps: dict[str, StepRunView]
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
