"""The orchestrator stack component, and its ``local`` flavor: runs a pipeline's steps in
this process, in dependency order.

A pipeline call runs on the active stack's orchestrator component; the component was
created with the store (as every component is) and records runs through it. Steps are
recorded in the order the pipeline function called them, which is already a topological
order: a step can only take the outputs of steps called before it.
"""

from __future__ import annotations

import hashlib
import json
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.pipelines._artifacts import Artifact, ArtifactStore, content_hash
from shipyard.pipelines._context import StepContext, active_context
from shipyard.pipelines._errors import ArtifactError, PipelineRunFailedError
from shipyard.pipelines._materializers import materializer_for, materializer_named
from shipyard.pipelines._records import RunRecords
from shipyard.pipelines._run import PipelineRunView, RunStatus, StepStatus
from shipyard.pipelines._service_materializer import ServiceMaterializer
from shipyard.stack.component import ComponentConfig, ComponentType, StackComponent

if TYPE_CHECKING:
    from shipyard.pipelines._step import StepInvocation
    from shipyard.stack.stack import Stack

__all__ = [
    "LocalOrchestrator",
    "LocalOrchestratorConfig",
    "Orchestrator",
    "artifact_store_of",
    "cache_key",
]


def cache_key(invocation: StepInvocation, inputs: dict[str, Artifact]) -> str:
    """Same step code, same parameters, inputs of the same content: same key."""
    step = invocation.step
    payload = {
        "source": step.source_hash,
        "params": invocation.params,
        "inputs": {name: art.content_hash for name, art in sorted(inputs.items())},
        "outputs": list(step.outputs),
        "materializers": [type(m).__qualname__ for m in step.materializers],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class _StepFailed(Exception):
    def __init__(self, error: str, trace: str) -> None:
        super().__init__(error)
        self.error = error
        self.trace = trace


def artifact_store_of(stack: Stack) -> ArtifactStore:
    """The stack's artifact store: its configured ``path`` (a directory or an fsspec URL),
    else ``$SHIPYARD_HOME/artifacts`` of the stack's store."""
    component = stack.artifact_store
    root: str | None = None
    if component is not None:
        # Read the raw configured value: an fsspec URL must not go through Path().
        configured = getattr(component.config, "path", None)
        if isinstance(configured, str) and configured:
            root = configured
    return ArtifactStore(root or stack.store.settings.artifacts_dir)


class Orchestrator(StackComponent):
    """Base of every orchestrator flavor: runs a pipeline's steps on a stack, recording
    the run in the component's store. The base runs them in this process, one after the
    other; a flavor that runs them elsewhere overrides ``run``."""

    TYPE: ClassVar[ComponentType] = ComponentType.ORCHESTRATOR

    def run(
        self,
        pipeline_name: str,
        invocations: Sequence[StepInvocation],
        stack: Stack,
        *,
        enable_cache: bool | None = None,
    ) -> PipelineRunView:
        """Run every step; raise ``PipelineRunFailedError`` (with the run) if one failed."""
        return _Run(RunRecords(self.store), artifact_store_of(stack), stack).run(
            pipeline_name, invocations, enable_cache
        )


class LocalOrchestratorConfig(ComponentConfig):
    """The local orchestrator has no settings."""


class LocalOrchestrator(Orchestrator):
    """Runs steps one after the other in this process, recording everything in the store."""

    FLAVOR_NAME: ClassVar[str] = "local"
    CONFIG_CLASS: ClassVar[type[ComponentConfig]] = LocalOrchestratorConfig


class _Run:
    """One run of one pipeline: its records, its artifact store, its stack."""

    def __init__(self, records: RunRecords, artifact_store: ArtifactStore, stack: Stack) -> None:
        self.records = records
        self.artifact_store = artifact_store
        self.stack = stack
        # Service inputs are read back through the registry of this run's store.
        self.service_materializer = ServiceMaterializer(records.store)

    def run(
        self,
        pipeline_name: str,
        invocations: Sequence[StepInvocation],
        enable_cache: bool | None,
    ) -> PipelineRunView:
        run_id = uuid.uuid4().hex
        self.records.create_run(run_id, pipeline_name)
        outputs: dict[str, dict[str, Artifact]] = {}
        blocked: set[str] = set()  # failed or skipped: their dependents cannot run

        def load_stack() -> Stack:
            return self.stack

        first_error: str | None = None
        try:
            for invocation in invocations:
                if invocation.upstream & blocked:
                    blocked.add(invocation.name)
                    self.records.skip_step(run_id, invocation, uuid.uuid4().hex)
                    continue
                try:
                    outputs[invocation.name] = self._run_step(
                        run_id, pipeline_name, invocation, outputs, load_stack, enable_cache
                    )
                except _StepFailed as failed:
                    blocked.add(invocation.name)
                    if first_error is None:
                        first_error = f"Step '{invocation.name}' failed: {failed.error}"
        except BaseException as err:
            # Ctrl-C or a bug in the orchestrator: the run must not stay "running" forever.
            self.records.finish_run(run_id, RunStatus.FAILED, f"Interrupted: {err!r}")
            raise
        status = RunStatus.FAILED if first_error else RunStatus.COMPLETED
        self.records.finish_run(run_id, status, first_error)
        view = self.records.get_run(run_id)
        if first_error:
            skipped = [s.name for s in view.steps.values() if s.status is StepStatus.SKIPPED]
            also = (
                f" Skipped because they need its output: {', '.join(skipped)}." if skipped else ""
            )
            raise PipelineRunFailedError(
                f"Pipeline '{pipeline_name}' run {run_id} failed. {first_error}.{also} "
                f"See `shipyard pipeline runs describe {run_id[:8]}`.",
                view,
            )
        return view

    def _run_step(
        self,
        run_id: str,
        pipeline_name: str,
        invocation: StepInvocation,
        outputs: dict[str, dict[str, Artifact]],
        load_stack: Callable[[], Stack],
        enable_cache: bool | None,
    ) -> dict[str, Artifact]:
        step = invocation.step
        step_run_id = uuid.uuid4().hex
        inputs = {
            name: outputs[ref.invocation][ref.output] for name, ref in invocation.inputs.items()
        }
        key = cache_key(invocation, inputs)
        use_cache = (
            step.enable_cache if enable_cache is None else enable_cache and step.enable_cache
        )
        if use_cache:
            hit = self.records.find_cached(key)
            if hit is not None and self._still_there(hit[1]):
                self.records.record_cached(run_id, invocation, step_run_id, key, hit[0])
                return hit[1]
        self.records.start_step(run_id, invocation, step_run_id)
        context = StepContext(
            pipeline_name=pipeline_name,
            run_id=run_id,
            step_name=invocation.name,
            inputs=dict(inputs),
            _load_stack=load_stack,
        )
        try:
            saved, reusable = self._execute(pipeline_name, invocation, step_run_id, inputs, context)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            trace = traceback.format_exc()
            self.records.fail_step(step_run_id, error, trace, context.metadata)
            self.records.add_run_metadata(run_id, context.run_metadata)
            raise _StepFailed(error, trace) from err
        cacheable = use_cache and reusable
        self.records.complete_step(step_run_id, saved, context.metadata, key if cacheable else None)
        self.records.add_run_metadata(run_id, context.run_metadata)
        return saved

    def _execute(
        self,
        pipeline_name: str,
        invocation: StepInvocation,
        step_run_id: str,
        inputs: dict[str, Artifact],
        context: StepContext,
    ) -> tuple[dict[str, Artifact], bool]:
        """The saved outputs, and whether a later run may reuse them (every materializer
        that wrote one is ``cacheable``)."""
        step = invocation.step
        kwargs: dict[str, Any] = dict(invocation.params)
        for name, artifact in inputs.items():
            if name in step.artifact_params:
                kwargs[name] = artifact
            else:
                materializer = materializer_named(
                    artifact.materializer, (*step.materializers, self.service_materializer)
                )
                kwargs[name] = materializer.load(artifact.uri)
        if step.context_param is not None:
            kwargs[step.context_param] = context
        with active_context(context):
            result = step.func(**kwargs)
        values = self._split(invocation, result)
        saved: dict[str, Artifact] = {}
        reusable = True
        for output, value in values.items():
            uri = self.artifact_store.output_uri(
                pipeline_name, invocation.name, step_run_id, output
            )
            materializer = materializer_for(value, invocation.name, output, step.materializers)
            summary = materializer.save(value, uri)
            reusable = reusable and getattr(materializer, "cacheable", True)
            saved[output] = Artifact(
                uri=uri,
                materializer=materializer.name,
                data_type=f"{type(value).__module__}.{type(value).__qualname__}",
                content_hash=content_hash(uri),
                summary=summary,
            )
        return saved, reusable

    @staticmethod
    def _split(invocation: StepInvocation, result: Any) -> dict[str, Any]:
        names = invocation.step.outputs
        if not names:
            return {}
        if len(names) == 1:
            return {names[0]: result}
        # A list counts as a tuple does (train_test_split returns one), as in ZenML.
        if not isinstance(result, (tuple, list)) or len(result) != len(names):
            got = (
                f"{len(result)} values"
                if isinstance(result, (tuple, list))
                else type(result).__qualname__
            )
            raise ArtifactError(
                f"Step '{invocation.name}' declares {len(names)} outputs {list(names)} but "
                f"returned {got}; return a tuple of {len(names)} values"
            )
        return dict(zip(names, result, strict=True))

    def _still_there(self, artifacts: dict[str, Artifact]) -> bool:
        return all(self.artifact_store.exists(a.uri) for a in artifacts.values())
