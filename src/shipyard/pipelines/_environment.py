"""Wiring a run to its environment: the store, the active stack and its artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from shipyard.pipelines._artifacts import ArtifactStore
from shipyard.pipelines._orchestrator import LocalOrchestrator
from shipyard.pipelines._records import RunRecords
from shipyard.pipelines._run import PipelineRunView

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.stack.stack import Stack
    from shipyard.store import Store

__all__ = [
    "artifact_store_of",
    "get_run",
    "list_runs",
    "open_records",
    "orchestrator_for_active_stack",
]


def open_records(store: Store) -> RunRecords:
    """Run records in the same database as ``store`` (already migrated by opening it)."""
    from shipyard.store._engine import create_store_engine

    return RunRecords(create_store_engine(store.settings.database_url))


def artifact_store_of(stack: Stack, settings: Settings) -> ArtifactStore:
    """The stack's artifact store: its configured ``path`` (a directory or an fsspec URL),
    else ``$SHIPYARD_HOME/artifacts``."""
    component = stack.artifact_store
    root: str | None = None
    if component is not None:
        # Read the raw configured value: an fsspec URL must not go through Path().
        configured = getattr(component.config, "path", None)
        if isinstance(configured, str) and configured:
            root = configured
    return ArtifactStore(root or settings.artifacts_dir)


@contextmanager
def orchestrator_for_active_stack() -> Iterator[LocalOrchestrator]:
    """A local orchestrator for the active stack of the store ``SHIPYARD_HOME`` points at."""
    from shipyard.stack.stack import Client

    client = Client()
    try:
        stack = client.active_stack
        records = open_records(client.store)
        try:
            yield LocalOrchestrator(
                records, artifact_store_of(stack, client.store.settings), lambda: stack
            )
        finally:
            records.close()
    finally:
        client.store.close()


def get_run(run_id: str) -> PipelineRunView:
    """A recorded run by id or unambiguous id prefix, from the store of ``SHIPYARD_HOME``."""
    from shipyard.store import Store

    with Store.open() as store:
        records = open_records(store)
        try:
            return records.get_run(run_id)
        finally:
            records.close()


def list_runs(pipeline_name: str | None = None, limit: int = 50) -> list[PipelineRunView]:
    """Recorded runs, newest first, optionally of one pipeline only."""
    from shipyard.store import Store

    with Store.open() as store:
        records = open_records(store)
        try:
            return records.list_runs(pipeline_name, limit)
        finally:
            records.close()
