"""``@step``: a Python function whose inputs and outputs are artifacts.

Called inside a ``@pipeline`` function, a step does not run: it records an invocation and
returns references to its future outputs, which later steps take as inputs. Called
anywhere else it is the plain function.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import typing
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, overload

from shipyard.pipelines._artifacts import Artifact
from shipyard.pipelines._context import StepContext
from shipyard.pipelines._errors import PipelineDefinitionError
from shipyard.pipelines._materializers import Materializer

__all__ = ["OutputRef", "Step", "StepInvocation", "step"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class OutputRef:
    """A not-yet-computed output of a step invocation inside a pipeline."""

    invocation: str
    """Name of the producing invocation (the step name, ``_2``-suffixed when repeated)."""
    output: str

    def __bool__(self) -> bool:
        # `if ref:` in a pipeline body would branch on a value that does not exist yet.
        raise PipelineDefinitionError(
            f"The output '{self.output}' of step '{self.invocation}' has no value while the "
            "pipeline is being assembled; branch inside a step instead (e.g. pass it to "
            "deployment_trigger)."
        )


@dataclass
class StepInvocation:
    """One call of a step in a pipeline: its inputs (references) and parameters (values)."""

    name: str
    step: Step[..., Any]
    inputs: dict[str, OutputRef]
    params: dict[str, Any]

    @property
    def upstream(self) -> set[str]:
        return {ref.invocation for ref in self.inputs.values()}


class _Builder(typing.Protocol):
    def add(self, step: Step[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


_building: ContextVar[_Builder | None] = ContextVar("shipyard_pipeline_builder", default=None)
"""The pipeline being assembled right now, if any."""


def _output_names(func: Callable[..., Any], hints: dict[str, Any]) -> tuple[str, ...]:
    returns = hints.get("return", inspect.Signature.empty)
    if returns is None or returns is type(None):
        return ()
    if typing.get_origin(returns) is tuple:
        items = typing.get_args(returns)
        if items and items[-1] is not Ellipsis:
            return tuple(_one_name(item, f"output_{i}") for i, item in enumerate(items))
    return (_one_name(returns, "output"),)


def _one_name(annotation: Any, default: str) -> str:
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in typing.get_args(annotation)[1:]:
            if isinstance(extra, str):
                return extra
    return default


def _source_hash(func: Callable[..., Any]) -> str:
    """The step's code identity: its source text, else its bytecode and constants."""
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        code = func.__code__
        text = repr((code.co_code, code.co_consts, code.co_names))
    return hashlib.sha256(text.encode()).hexdigest()


class Step(Generic[P, R]):
    """A function made into a pipeline step; see ``step``."""

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        enable_cache: bool = True,
        materializers: Sequence[Materializer] = (),
    ) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.name = name or func.__name__
        self.enable_cache = enable_cache
        self.materializers = tuple(materializers)
        self.signature = inspect.signature(func)
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception as err:
            raise PipelineDefinitionError(
                f"Cannot read the type annotations of step '{self.name}': {err}. "
                "Make every annotation importable from the step's module."
            ) from err
        self.context_param = next(
            (n for n, h in hints.items() if n != "return" and h is StepContext), None
        )
        self.artifact_params = frozenset(
            n for n, h in hints.items() if n != "return" and h is Artifact
        )
        self.outputs = _output_names(func, hints)
        if len(set(self.outputs)) != len(self.outputs):
            raise PipelineDefinitionError(
                f"Step '{self.name}' names two outputs alike: {list(self.outputs)}."
            )
        self.source_hash = _source_hash(func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Typed loosely on purpose: inside a pipeline the arguments and the result are
        # output references, not the values the function's annotations name; the
        # StepContext parameter is filled in by the orchestrator.
        builder = _building.get()
        if builder is not None:
            return builder.add(self, args, kwargs)
        return self.func(*args, **kwargs)

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[dict[str, OutputRef], dict[str, Any]]:
        """Split a call's arguments into inputs (output references) and parameters."""
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as err:
            raise PipelineDefinitionError(f"Bad call of step '{self.name}': {err}") from err
        bound.apply_defaults()
        inputs: dict[str, OutputRef] = {}
        params: dict[str, Any] = {}
        for param_name, param in self.signature.parameters.items():
            if param_name == self.context_param:
                continue
            if param_name not in bound.arguments:
                raise PipelineDefinitionError(
                    f"Step '{self.name}' was called without its argument '{param_name}'."
                )
            value = bound.arguments[param_name]
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"Step '{self.name}' takes *{param_name}; steps need named parameters."
                )
            if isinstance(value, OutputRef):
                inputs[param_name] = value
            elif param_name in self.artifact_params:
                raise PipelineDefinitionError(
                    f"Parameter '{param_name}' of step '{self.name}' is an Artifact: pass "
                    "the output of another step, not a value."
                )
            else:
                params[param_name] = _checked_param(self.name, param_name, value)
        return inputs, params


def _checked_param(step_name: str, param_name: str, value: Any) -> Any:
    # Parameters are part of the cache key and of the run record, so they must be JSON.
    try:
        json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise PipelineDefinitionError(
            f"Parameter '{param_name}' of step '{step_name}' is a {type(value).__qualname__}, "
            "which is not JSON-able. Pass plain values as parameters, and produce other "
            "objects in a step so they travel as artifacts."
        ) from err
    return value


@overload
def step(func: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    enable_cache: bool = True,
    materializers: Sequence[Materializer] = (),
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    enable_cache: bool = True,
    materializers: Sequence[Materializer] = (),
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a function a pipeline step.

    ``enable_cache``: a later run with the same step code, the same parameters and inputs
    of the same content reuses this step's outputs instead of running it.
    ``materializers``: custom materializers, asked before the built-in ones.
    """

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        return Step(f, name=name, enable_cache=enable_cache, materializers=materializers)

    return wrap(func) if func is not None else wrap
