"""Errors of pipelines: a bad pipeline definition, a failed run, an artifact that cannot be kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.pipelines._run import PipelineRunView

__all__ = ["ArtifactError", "PipelineDefinitionError", "PipelineRunFailedError"]


class PipelineDefinitionError(ShipyardError):
    """A step or pipeline is declared or called in a way the orchestrator cannot run."""

    status_code = 400


class ArtifactError(ShipyardError):
    """A step output could not be written to, or read back from, the artifact store."""


class PipelineRunFailedError(ShipyardError):
    """A step raised: its run and step are recorded as failed, its dependents were skipped.

    ``run`` is the recorded run, so callers can inspect every step's status.
    """

    def __init__(self, message: str, run: PipelineRunView) -> None:
        super().__init__(message)
        self.run = run
