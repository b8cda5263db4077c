"""Running pipelines: order, outputs, caching (hit and miss), failures and the step context."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pytest

from shipyard.pipelines import (
    Artifact,
    PipelineDefinitionError,
    PipelineRunFailedError,
    RunStatus,
    StepContext,
    StepStatus,
    get_step_context,
    pipeline,
    step,
)

calls: list[str] = []


@step
def make_numbers(n: int) -> np.ndarray:
    calls.append("make_numbers")
    return np.arange(n, dtype=np.float64)


@step
def scale(values: np.ndarray, factor: float) -> np.ndarray:
    calls.append("scale")
    return values * factor


@step
def summarize(values: np.ndarray) -> tuple[Annotated[float, "total"], Annotated[int, "count"]]:
    calls.append("summarize")
    return float(values.sum()), len(values)


@pipeline
def numbers(n: int, factor: float) -> None:
    summarize(scale(make_numbers(n), factor=factor))


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def test_steps_run_in_dependency_order_and_outputs_load_back(home: Path) -> None:
    run = numbers(4, factor=2.0)
    assert run.status is RunStatus.COMPLETED
    assert list(run.steps) == ["make_numbers", "scale", "summarize"]
    assert calls == ["make_numbers", "scale", "summarize"]
    summary = run.steps["summarize"]
    assert summary.load("total") == 12.0
    assert summary.load("count") == 4
    np.testing.assert_array_equal(run.steps["scale"].load(), [0.0, 2.0, 4.0, 6.0])
    artifact = run.steps["scale"].output
    assert artifact.materializer == "numpy"
    assert artifact.uri.startswith(str(home / "artifacts" / "numbers" / "scale"))
    assert all(s.duration is not None and s.duration >= 0 for s in run.steps.values())


def test_same_code_and_inputs_hit_the_cache(home: Path) -> None:
    first = numbers(4, factor=2.0)
    calls.clear()
    second = numbers(4, factor=2.0)
    assert calls == []
    assert {s.status for s in second.steps.values()} == {StepStatus.CACHED}
    assert second.steps["summarize"].cached_from == first.steps["summarize"].id
    assert second.steps["summarize"].load("total") == 12.0
    assert second.id != first.id


def test_a_changed_parameter_misses_and_downstream_follows_the_content(
    home: Path,
) -> None:
    numbers(4, factor=2.0)
    calls.clear()
    run = numbers(4, factor=3.0)
    # make_numbers is unchanged (hit); scale has a new parameter (miss), and summarize
    # has an input of new content (miss).
    assert run.steps["make_numbers"].status is StepStatus.CACHED
    assert run.steps["scale"].status is StepStatus.COMPLETED
    assert run.steps["summarize"].status is StepStatus.COMPLETED
    assert calls == ["scale", "summarize"]
    assert run.steps["summarize"].load("total") == 18.0


def test_changed_step_code_misses(home: Path) -> None:
    @step
    def constant() -> int:
        return 1

    @pipeline
    def one() -> None:
        constant()

    first = one()

    @step(name="constant")
    def constant_v2() -> int:
        return 2

    @pipeline(name="one")
    def one_v2() -> None:
        constant_v2()

    second = one_v2()
    assert first.steps["constant"].load() == 1
    assert second.steps["constant"].status is StepStatus.COMPLETED
    assert second.steps["constant"].load() == 2


def test_disabled_cache_always_runs(home: Path) -> None:
    @step(enable_cache=False)
    def stamp(tag: str) -> str:
        calls.append("stamp")
        return tag

    @pipeline
    def stamps() -> None:
        stamp("a")

    stamps()
    stamps()
    assert calls == ["stamp", "stamp"]


def test_cache_is_not_used_when_the_artifact_is_gone(home: Path) -> None:
    import shutil

    first = numbers(3, factor=1.0)
    shutil.rmtree(first.steps["make_numbers"].output.uri)
    calls.clear()
    second = numbers(3, factor=1.0)
    assert second.steps["make_numbers"].status is StepStatus.COMPLETED
    assert calls[0] == "make_numbers"


class Boom(Exception):
    pass


@step
def explode(values: np.ndarray) -> np.ndarray:
    raise Boom(f"cannot handle {len(values)} values")


@step
def independent() -> str:
    calls.append("independent")
    return "ok"


@pipeline
def failing() -> None:
    summarize(explode(make_numbers(3)))
    independent()


def test_a_failing_step_fails_its_run_and_skips_its_dependents(home: Path) -> None:
    with pytest.raises(PipelineRunFailedError) as caught:
        failing()
    run = caught.value.run
    assert run.status is RunStatus.FAILED
    assert "explode" in str(caught.value) and "summarize" in str(caught.value)
    assert run.steps["make_numbers"].status is StepStatus.COMPLETED
    assert run.steps["explode"].status is StepStatus.FAILED
    assert run.steps["explode"].error == "Boom: cannot handle 3 values"
    assert "raise Boom" in (run.steps["explode"].traceback or "")
    assert run.steps["summarize"].status is StepStatus.SKIPPED
    assert run.steps["summarize"].outputs == {}
    # A step that does not need the failed output still runs.
    assert run.steps["independent"].status is StepStatus.COMPLETED
    assert "summarize" not in calls
    assert run.error is not None and "Boom" in run.error


def test_step_context_by_parameter_and_by_function(home: Path) -> None:
    seen: dict[str, object] = {}

    @step
    def inspect_context(values: np.ndarray, context: StepContext) -> None:
        seen["param"] = context
        seen["function"] = get_step_context()
        seen["stack"] = context.stack.name
        seen["input_uri"] = context.inputs["values"].uri
        context.add_metadata(rows=len(values))
        context.add_run_metadata(decision="yes")

    @pipeline
    def contextual() -> None:
        inspect_context(make_numbers(2))

    run = contextual()
    context = seen["param"]
    assert isinstance(context, StepContext)
    assert seen["function"] is context
    assert context.pipeline_name == "contextual"
    assert context.run_id == run.id
    assert context.step_name == "inspect_context"
    # The spelling of the model-deployer docs' deploy steps.
    assert context.pipeline.name == "contextual"
    assert context.pipeline_run.id == run.id
    assert context.step_run.name == "inspect_context"
    assert seen["stack"] == "default"
    assert seen["input_uri"] == run.steps["make_numbers"].output.uri
    assert run.steps["inspect_context"].metadata == {"rows": 2}
    assert run.metadata == {"decision": "yes"}
    with pytest.raises(PipelineDefinitionError, match="outside a running step"):
        get_step_context()


def test_the_context_names_the_fix_when_the_stack_has_no_deployer(home: Path) -> None:
    from shipyard.store import Store

    with Store.open() as store:
        default = store.get_stack("default")
        assert default is not None
        store.create_stack(
            "no-deployer",
            {kind: default.components[kind].id for kind in ("artifact_store", "orchestrator")},
        )
        store.set_active_stack("no-deployer")

    @step
    def needs_deployer(context: StepContext) -> None:
        _ = context.model_deployer

    @pipeline
    def deploying() -> None:
        needs_deployer()

    with pytest.raises(PipelineRunFailedError) as caught:
        deploying()
    error = caught.value.run.steps["needs_deployer"].error or ""
    assert error.startswith("StackError:")
    assert "'no-deployer' has none" in error
    assert "shipyard model-deployer register" in error


def test_artifact_parameters_get_the_artifact_not_the_value(home: Path) -> None:
    @step
    def where(values: Artifact) -> str:
        return values.uri

    @pipeline
    def located() -> None:
        where(make_numbers(2))

    run = located()
    assert run.steps["where"].load() == run.steps["make_numbers"].output.uri


def test_pandas_frames_and_json_values_round_trip(home: Path) -> None:
    @step
    def frame() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    @step
    def describe(df: pd.DataFrame) -> dict[str, object]:
        return {"columns": list(df.columns), "rows": len(df), "ok": True}

    @pipeline
    def frames() -> None:
        describe(frame())

    run = frames()
    pd.testing.assert_frame_equal(
        run.steps["frame"].load(), pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    )
    assert run.steps["describe"].load() == {"columns": ["a", "b"], "rows": 2, "ok": True}


def test_definition_errors_are_caught_before_anything_runs(home: Path) -> None:
    @step
    def takes(value: object) -> None:
        return None

    @pipeline
    def bad_param() -> None:
        takes(object())

    with pytest.raises(PipelineDefinitionError, match="not JSON-able"):
        bad_param()

    @pipeline
    def branches() -> None:
        if make_numbers(2):
            pass

    with pytest.raises(PipelineDefinitionError, match="branch inside a step"):
        branches()

    @pipeline
    def empty() -> None:
        return None

    with pytest.raises(PipelineDefinitionError, match="called no steps"):
        empty()


def test_an_unsaveable_output_fails_the_step_with_the_fix(home: Path) -> None:
    @step
    def opaque() -> object:
        return threading.Lock()  # not even cloudpickle can save a lock

    @pipeline
    def unsaveable() -> None:
        opaque()

    with pytest.raises(PipelineRunFailedError) as caught:
        unsaveable()
    error = caught.value.run.steps["opaque"].error or ""
    assert "cannot be saved: no materializer takes it and cloudpickle fails" in error


def test_a_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    np.testing.assert_array_equal(scale(np.array([1.0]), factor=3.0), [3.0])


def test_an_interrupted_run_is_recorded_as_failed_not_left_running(home: Path) -> None:
    from shipyard.pipelines import list_runs

    @step(enable_cache=False)
    def interrupted() -> int:
        raise KeyboardInterrupt

    @pipeline
    def stopped() -> None:
        interrupted()

    with pytest.raises(KeyboardInterrupt):
        stopped()
    [run] = list_runs("stopped")
    assert run.status is RunStatus.FAILED
    assert run.error is not None and run.error.startswith("Interrupted")
    assert run.steps["interrupted"].status is StepStatus.FAILED
    assert run.steps["interrupted"].error == "Interrupted."


def test_a_step_called_twice_gets_two_names(home: Path) -> None:
    @pipeline
    def twice() -> None:
        values = make_numbers(3)
        scale(values, factor=2.0)
        scale(values, factor=10.0)

    run = twice()
    assert list(run.steps) == ["make_numbers", "scale", "scale_2"]
    np.testing.assert_array_equal(run.steps["scale_2"].load(), [0.0, 10.0, 20.0])
    assert run.steps["scale_2"].inputs == {"values": "make_numbers.output"}
    assert run.steps["scale_2"].params == {"factor": 10.0}
