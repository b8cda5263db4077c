"""Where a pipeline call meets its environment: the store ``SHIPYARD_HOME`` (or
``SHIPYARD_STORE_URL``) points at, its active stack, and that stack's orchestrator.

These are the entry points that open the store from the environment (as ``Client`` does);
everything below them receives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard.errors import StackError
from shipyard.pipelines._orchestrator import Orchestrator
from shipyard.pipelines._records import RunRecords
from shipyard.pipelines._run import PipelineRunView

if TYPE_CHECKING:
    from shipyard.pipelines._step import StepInvocation
    from shipyard.store import Store

__all__ = ["get_run", "list_runs", "run_on_active_stack"]


def run_on_active_stack(
    pipeline_name: str, invocations: Sequence[StepInvocation], enable_cache: bool | None
) -> PipelineRunView:
    """Run the steps on the active stack's orchestrator, in the environment's store."""
    from shipyard.stack.stack import Client

    client = Client()
    try:
        stack = client.active_stack
        orchestrator = stack.orchestrator
        if not isinstance(orchestrator, Orchestrator):
            what = "no orchestrator" if orchestrator is None else f"the {orchestrator!r}"
            raise StackError(
                f"Pipeline '{pipeline_name}' needs an orchestrator, but the active stack "
                f"'{stack.name}' has {what}. Use a stack with one, e.g. "
                "`shipyard stack register NAME -a default --orchestrator default -d local --set`."
            )
        return orchestrator.run(pipeline_name, invocations, stack, enable_cache=enable_cache)
    finally:
        client.store.close()


def _store(store: Store | None) -> tuple[Store, bool]:
    if store is not None:
        return store, False
    from shipyard.store import Store

    return Store.open(), True


def get_run(run_id: str, store: Store | None = None) -> PipelineRunView:
    """A recorded run by id or unambiguous id prefix, from ``store`` (default: the one
    ``SHIPYARD_HOME`` points at)."""
    opened, owned = _store(store)
    try:
        return RunRecords(opened).get_run(run_id)
    finally:
        if owned:
            opened.close()


def list_runs(
    pipeline_name: str | None = None, limit: int = 50, store: Store | None = None
) -> list[PipelineRunView]:
    """Recorded runs, newest first, optionally of one pipeline only."""
    opened, owned = _store(store)
    try:
        return RunRecords(opened).list_runs(pipeline_name, limit)
    finally:
        if owned:
            opened.close()
