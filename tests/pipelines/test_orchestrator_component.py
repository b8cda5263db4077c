"""The stack's orchestrator component runs pipelines, recording through the store it was
given; a Service output is read back through a store that is passed in, never opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.pipelines import ArtifactError, pipeline, step
from shipyard.pipelines._orchestrator import LocalOrchestrator, Orchestrator
from shipyard.pipelines._service_materializer import ServiceMaterializer
from shipyard.stack import FlavorRegistry
from shipyard.stack.component import ComponentType
from shipyard.stack.manage import register_component, register_stack
from shipyard.stack.stack import get_active_stack
from shipyard.store import Store

from . import counting_orchestrator


@step
def one() -> int:
    return 1


@pipeline
def single() -> None:
    one()


def test_the_default_stack_orchestrator_is_the_one_that_runs_pipelines(store: Store) -> None:
    orchestrator = get_active_stack(store).orchestrator
    assert isinstance(orchestrator, LocalOrchestrator)
    assert isinstance(orchestrator, Orchestrator)


def test_a_pipeline_runs_on_the_active_stacks_orchestrator(store: Store) -> None:
    registry = FlavorRegistry(store)
    source = f"{counting_orchestrator.__name__}:MarkingOrchestrator"
    registry.register_source(source, ComponentType.ORCHESTRATOR)
    register_component(store, registry, ComponentType.ORCHESTRATOR, "marks", "marking", {})
    register_stack(
        store,
        "marked",
        {
            ComponentType.ARTIFACT_STORE: "default",
            ComponentType.ORCHESTRATOR: "marks",
            ComponentType.MODEL_DEPLOYER: None,
        },
        activate=True,
    )
    counting_orchestrator.marked.clear()
    run = single()
    assert counting_orchestrator.marked == [("marks", run.id)]
    assert run.steps["one"].load() == 1


def test_a_service_artifact_is_read_through_a_given_store_only(home: Path, tmp_path: Path) -> None:
    assert ServiceMaterializer.cacheable is False
    with pytest.raises(ArtifactError, match="no store was given"):
        ServiceMaterializer().load(str(tmp_path / "nowhere"))
