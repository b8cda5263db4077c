"""A custom orchestrator flavor (registered by ``--source``): the local one, plus a mark
on every run it executes, so a test can see which component ran a pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from shipyard.pipelines import PipelineRunView
from shipyard.pipelines._orchestrator import LocalOrchestrator
from shipyard.stack.stack import Stack


class MarkingOrchestrator(LocalOrchestrator):
    """Runs steps in this process and records its own component name on the run."""

    FLAVOR_NAME: ClassVar[str] = "marking"

    def run(
        self,
        pipeline_name: str,
        invocations: Sequence[Any],
        stack: Stack,
        *,
        enable_cache: bool | None = None,
    ) -> PipelineRunView:
        view = super().run(pipeline_name, invocations, stack, enable_cache=enable_cache)
        marked.append((self.name, view.id))
        return view


marked: list[tuple[str, str]] = []
