"""Runs, step runs and artifacts, read and written through the store it is given.

The tables are the store's (``store._schema``), and so are the transactions and their
error mapping (``Store.transaction``): this module only says what to write and read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.errors import NotFoundError, StoreError
from shipyard.pipelines._artifacts import Artifact
from shipyard.pipelines._run import PipelineRunView, RunStatus, StepRunView, StepStatus
from shipyard.pipelines._service_materializer import ServiceMaterializer
from shipyard.store._schema import artifacts, pipeline_runs, step_runs

if TYPE_CHECKING:
    from shipyard.pipelines._step import StepInvocation
    from shipyard.store import Store

__all__ = ["RunNotFoundError", "RunRecords"]


class RunNotFoundError(NotFoundError):
    """No pipeline run with that id (or id prefix)."""


def _now() -> datetime:
    # Naive UTC in the database (SQLite keeps no zone); aware UTC everywhere else.
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _end_step(
    conn: sa.Connection,
    step_run_id: str,
    status: StepStatus,
    step_metadata: dict[str, Any],
    **values: Any,
) -> None:
    conn.execute(
        step_runs.update()
        .where(step_runs.c.id == step_run_id)
        .values(
            status=status.value,
            ended=_now(),
            step_metadata=json.dumps(step_metadata, sort_keys=True),
            **values,
        )
    )


class RunRecords:
    """Reads and writes pipeline runs in ``store`` (one store transaction per call)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing -----------------------------------------------------------------------

    def create_run(self, run_id: str, pipeline_name: str) -> None:
        with self.store.transaction(write=True) as conn:
            conn.execute(
                pipeline_runs.insert().values(
                    id=run_id,
                    pipeline_name=pipeline_name,
                    status=RunStatus.RUNNING.value,
                    started=_now(),
                )
            )

    def finish_run(self, run_id: str, status: RunStatus, error: str | None) -> None:
        with self.store.transaction(write=True) as conn:
            conn.execute(
                pipeline_runs.update()
                .where(pipeline_runs.c.id == run_id)
                .values(status=status.value, ended=_now(), error=error)
            )
            # Steps still "running" belong to an interrupted run: say so, do not leave them.
            conn.execute(
                step_runs.update()
                .where(step_runs.c.run_id == run_id, step_runs.c.status == StepStatus.RUNNING)
                .values(status=StepStatus.FAILED.value, ended=_now(), error="Interrupted.")
            )

    def add_run_metadata(self, run_id: str, values: dict[str, Any]) -> None:
        if not values:
            return
        with self.store.transaction(write=True) as conn:
            current = conn.execute(
                sa.select(pipeline_runs.c.run_metadata).where(pipeline_runs.c.id == run_id)
            ).scalar_one()
            merged = {**json.loads(current), **values}
            conn.execute(
                pipeline_runs.update()
                .where(pipeline_runs.c.id == run_id)
                .values(run_metadata=json.dumps(merged, sort_keys=True))
            )

    def _insert_step(
        self,
        conn: sa.Connection,
        run_id: str,
        invocation: StepInvocation,
        step_run_id: str,
        status: StepStatus,
        **values: Any,
    ) -> None:
        position = conn.execute(
            sa.select(sa.func.count()).select_from(step_runs).where(step_runs.c.run_id == run_id)
        ).scalar_one()
        conn.execute(
            step_runs.insert().values(
                id=step_run_id,
                run_id=run_id,
                position=position,
                name=invocation.name,
                status=status.value,
                params=json.dumps(invocation.params, sort_keys=True),
                inputs=json.dumps(
                    {k: f"{r.invocation}.{r.output}" for k, r in invocation.inputs.items()}
                ),
                **values,
            )
        )

    def start_step(self, run_id: str, invocation: StepInvocation, step_run_id: str) -> None:
        with self.store.transaction(write=True) as conn:
            self._insert_step(
                conn, run_id, invocation, step_run_id, StepStatus.RUNNING, started=_now()
            )

    def skip_step(self, run_id: str, invocation: StepInvocation, step_run_id: str) -> None:
        with self.store.transaction(write=True) as conn:
            self._insert_step(conn, run_id, invocation, step_run_id, StepStatus.SKIPPED)

    def record_cached(
        self,
        run_id: str,
        invocation: StepInvocation,
        step_run_id: str,
        key: str,
        source_step_run_id: str,
    ) -> None:
        """A step served from the cache: its outputs are those of ``source_step_run_id``."""
        now = _now()
        with self.store.transaction(write=True) as conn:
            # The reused run's metadata describes these outputs too, so it comes along.
            source_metadata = conn.execute(
                sa.select(step_runs.c.step_metadata).where(step_runs.c.id == source_step_run_id)
            ).scalar_one()
            self._insert_step(
                conn,
                run_id,
                invocation,
                step_run_id,
                StepStatus.CACHED,
                started=now,
                ended=now,
                cache_key=key,
                cached_from=source_step_run_id,
                step_metadata=source_metadata,
            )

    def complete_step(
        self,
        step_run_id: str,
        outputs: dict[str, Artifact],
        step_metadata: dict[str, Any],
        cache_key: str | None,
    ) -> None:
        """Mark a step completed; ``cache_key`` (None: not reusable) is set only now, so a
        half-run step is never a cache hit."""
        with self.store.transaction(write=True) as conn:
            for name, artifact in outputs.items():
                conn.execute(
                    artifacts.insert().values(
                        step_run_id=step_run_id,
                        output=name,
                        uri=artifact.uri,
                        materializer=artifact.materializer,
                        data_type=artifact.data_type,
                        content_hash=artifact.content_hash,
                        summary=json.dumps(artifact.summary, sort_keys=True, default=str),
                    )
                )
            _end_step(conn, step_run_id, StepStatus.COMPLETED, step_metadata, cache_key=cache_key)

    def fail_step(
        self, step_run_id: str, error: str, trace: str, step_metadata: dict[str, Any]
    ) -> None:
        with self.store.transaction(write=True) as conn:
            _end_step(
                conn, step_run_id, StepStatus.FAILED, step_metadata, error=error, traceback=trace
            )

    # -- reading -----------------------------------------------------------------------

    def find_cached(self, key: str) -> tuple[str, dict[str, Artifact]] | None:
        """The newest completed step run with ``key``: its id and its outputs."""
        with self.store.transaction() as conn:
            row = conn.execute(
                sa.select(step_runs.c.id)
                .where(
                    step_runs.c.cache_key == key,
                    step_runs.c.status == StepStatus.COMPLETED.value,
                )
                .order_by(step_runs.c.ended.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            return str(row.id), self._outputs(conn, str(row.id))

    @staticmethod
    def _outputs(conn: sa.Connection, producer_id: str) -> dict[str, Artifact]:
        rows = conn.execute(
            sa.select(artifacts)
            .where(artifacts.c.step_run_id == producer_id)
            .order_by(artifacts.c.id)
        )
        return {
            r.output: Artifact(
                uri=r.uri,
                materializer=r.materializer,
                data_type=r.data_type,
                content_hash=r.content_hash,
                summary=json.loads(r.summary),
            )
            for r in rows
        }

    def get_run(self, run_id: str) -> PipelineRunView:
        """A run by its id or an unambiguous prefix of it."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                sa.select(pipeline_runs)
                .where(pipeline_runs.c.id.startswith(run_id, autoescape=True))
                .limit(2)
            ).all()
            if not rows or not run_id:
                raise RunNotFoundError(
                    f"No pipeline run with id '{run_id}'. "
                    "See `shipyard pipeline runs list` for the runs there are."
                )
            if len(rows) > 1:
                raise RunNotFoundError(
                    f"The run id prefix '{run_id}' matches several runs; give more characters."
                )
            return self._view(conn, rows[0])

    def list_runs(self, pipeline_name: str | None = None, limit: int = 50) -> list[PipelineRunView]:
        """Newest first."""
        query = sa.select(pipeline_runs).order_by(pipeline_runs.c.started.desc()).limit(limit)
        if pipeline_name is not None:
            query = query.where(pipeline_runs.c.pipeline_name == pipeline_name)
        with self.store.transaction() as conn:
            return [self._view(conn, row) for row in conn.execute(query).all()]

    def _view(self, conn: sa.Connection, run: sa.Row[Any]) -> PipelineRunView:
        steps: dict[str, StepRunView] = {}
        rows = conn.execute(
            sa.select(step_runs).where(step_runs.c.run_id == run.id).order_by(step_runs.c.position)
        )
        for row in rows:
            steps[row.name] = StepRunView(
                id=row.id,
                name=row.name,
                status=StepStatus(row.status),
                started_at=_aware(row.started),
                ended_at=_aware(row.ended),
                cache_key=row.cache_key,
                params=json.loads(row.params),
                inputs=json.loads(row.inputs),
                outputs=self._outputs(conn, row.cached_from or row.id),
                metadata=json.loads(row.step_metadata),
                error=row.error,
                traceback=row.traceback,
                cached_from=row.cached_from,
                materializers=(ServiceMaterializer(self.store),),
            )
        started = _aware(run.started)
        if started is None:  # pragma: no cover - the column is NOT NULL
            raise StoreError(f"Pipeline run {run.id} has no start time.")
        return PipelineRunView(
            id=run.id,
            pipeline_name=run.pipeline_name,
            status=RunStatus(run.status),
            started_at=started,
            ended_at=_aware(run.ended),
            steps=steps,
            metadata=json.loads(run.run_metadata),
            error=run.error,
        )
