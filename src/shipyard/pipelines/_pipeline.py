"""``@pipeline``: a Python function that calls steps; calling it runs them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, overload

from shipyard.pipelines._errors import PipelineDefinitionError
from shipyard.pipelines._run import PipelineRunView
from shipyard.pipelines._step import OutputRef, Step, StepInvocation, _building

__all__ = ["Pipeline", "pipeline"]

P = ParamSpec("P")


class _Builder:
    """Collects the step invocations of one pipeline function call."""

    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.invocations: list[StepInvocation] = []
        self._names: set[str] = set()

    def add(self, step: Step[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        inputs, params = step.bind(args, kwargs)
        for ref in inputs.values():
            if ref.invocation not in self._names:
                raise PipelineDefinitionError(
                    f"Step '{step.name}' in pipeline '{self.pipeline_name}' takes an output of "
                    f"'{ref.invocation}', which is not a step of this pipeline."
                )
        name = step.name
        counter = 2
        while name in self._names:
            name = f"{step.name}_{counter}"
            counter += 1
        self._names.add(name)
        self.invocations.append(StepInvocation(name, step, inputs, params))
        refs = tuple(OutputRef(name, output) for output in step.outputs)
        if not refs:
            return None
        return refs[0] if len(refs) == 1 else refs


class Pipeline(Generic[P]):
    """A function made into a pipeline; see ``pipeline``."""

    def __init__(
        self, func: Callable[P, Any], *, name: str | None = None, enable_cache: bool | None = None
    ) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.name = name or func.__name__
        self.enable_cache = enable_cache

    def build(self, *args: P.args, **kwargs: P.kwargs) -> list[StepInvocation]:
        """The steps this call would run, in order, without running them."""
        if _building.get() is not None:
            raise PipelineDefinitionError(
                f"Pipeline '{self.name}' was called while another pipeline was being "
                "assembled; pipelines do not nest. Call its steps directly instead."
            )
        builder = _Builder(self.name)
        token = _building.set(builder)
        try:
            self.func(*args, **kwargs)
        finally:
            _building.reset(token)
        if not builder.invocations:
            raise PipelineDefinitionError(
                f"Pipeline '{self.name}' called no steps. Call @step functions in its body."
            )
        return builder.invocations

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> PipelineRunView:
        """Run the pipeline on the active stack and return the recorded run.

        Raises ``PipelineRunFailedError`` (carrying the run) when a step failed.
        """
        from shipyard.pipelines._environment import run_on_active_stack

        return run_on_active_stack(self.name, self.build(*args, **kwargs), self.enable_cache)


@overload
def pipeline(func: Callable[P, Any], /) -> Pipeline[P]: ...


@overload
def pipeline(
    *, name: str | None = None, enable_cache: bool | None = None
) -> Callable[[Callable[P, Any]], Pipeline[P]]: ...


def pipeline(
    func: Callable[P, Any] | None = None,
    /,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
) -> Pipeline[P] | Callable[[Callable[P, Any]], Pipeline[P]]:
    """Make a function a pipeline. ``enable_cache=False`` turns caching off for every step."""

    def wrap(f: Callable[P, Any]) -> Pipeline[P]:
        return Pipeline(f, name=name, enable_cache=enable_cache)

    return wrap(func) if func is not None else wrap
