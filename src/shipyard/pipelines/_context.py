"""The step context: what a running step may know about its run and its stack.

A step gets it either by declaring a parameter annotated ``StepContext`` (the orchestrator
fills it in) or by calling ``get_step_context()`` while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import StackError
from shipyard.pipelines._errors import PipelineDefinitionError

if TYPE_CHECKING:
    from shipyard.deployers.base import ModelDeployer
    from shipyard.pipelines._artifacts import Artifact
    from shipyard.stack.stack import Stack

__all__ = ["StepContext", "get_step_context"]

_current: ContextVar[StepContext | None] = ContextVar("shipyard_step_context", default=None)


@dataclass(frozen=True)
class NamedRef:
    """``context.pipeline.name``, ``context.pipeline_run.id``: the spelling the docs use."""

    name: str
    id: str = ""


@dataclass
class StepContext:
    """Who is running: the pipeline, the run, the step, and the stack they run on."""

    pipeline_name: str
    run_id: str
    step_name: str
    inputs: Mapping[str, Artifact]
    """The artifacts this step reads, by parameter name (URI, type, content hash)."""
    _load_stack: Callable[[], Stack] = field(repr=False)
    _stack: Stack | None = field(default=None, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    """Values this step recorded with ``add_metadata``; stored on the step run."""
    run_metadata: dict[str, Any] = field(default_factory=dict)
    """Values this step recorded with ``add_run_metadata``; stored on the pipeline run."""

    @property
    def pipeline(self) -> NamedRef:
        return NamedRef(name=self.pipeline_name)

    @property
    def pipeline_run(self) -> NamedRef:
        return NamedRef(name=f"{self.pipeline_name}-{self.run_id[:8]}", id=self.run_id)

    @property
    def step_run(self) -> NamedRef:
        return NamedRef(name=self.step_name)

    @property
    def stack(self) -> Stack:
        """The active stack of this run (read from the store once, on first use)."""
        if self._stack is None:
            self._stack = self._load_stack()
        return self._stack

    @property
    def model_deployer(self) -> ModelDeployer:
        """The model deployer of the active stack; an error says how to add one."""
        deployer = self.stack.model_deployer
        if deployer is None:
            raise StackError(
                f"Step '{self.step_name}' needs a model deployer, but the active stack "
                f"'{self.stack.name}' has none. Register one and add it to a stack: "
                "`shipyard model-deployer register local --flavor=local` then "
                "`shipyard stack register NAME -a default --orchestrator default -d local --set`."
            )
        return deployer

    def add_metadata(self, **values: Any) -> None:
        """Record JSON-able values on this step run (shown by ``pipeline runs describe``)."""
        self.metadata.update(_json_checked(values, self.step_name))

    def add_run_metadata(self, **values: Any) -> None:
        """Record JSON-able values on the whole pipeline run (e.g. a deployment decision)."""
        self.run_metadata.update(_json_checked(values, self.step_name))


def _json_checked(values: dict[str, Any], step_name: str) -> dict[str, Any]:
    try:
        json.dumps(values)
    except (TypeError, ValueError) as err:
        raise PipelineDefinitionError(
            f"Step '{step_name}' recorded metadata that is not JSON-able ({err}). "
            "Record plain numbers, strings, booleans, lists or dicts."
        ) from err
    return values


def get_step_context() -> StepContext:
    """The context of the step that is running now.

    Raises ``PipelineDefinitionError`` when called outside a running step.
    """
    context = _current.get()
    if context is None:
        raise PipelineDefinitionError(
            "get_step_context() was called outside a running step. Call it from the body "
            "of a @step function while its pipeline runs, or declare a parameter "
            "annotated StepContext."
        )
    return context


@contextmanager
def active_context(context: StepContext) -> Iterator[StepContext]:
    """Make ``context`` the one ``get_step_context()`` returns, for the duration of a step."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
