"""Run a batch job: plan, check the output, start workers, hand out shards, finish.

With one worker the shards run in this process. With N > 1 this process only
coordinates and N worker processes predict: a coordinator that predicts too answers
its workers only between its own batches (a worker that finished a shard waited for
its next one up to a batch's time) and would load the model a second time in the
same start-up seconds. Only shard descriptions, progress counts and results cross
process boundaries; rows never do.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

from shipyard._redact import mask_credentials
from shipyard.batch._db import DatabaseOutput, is_database_url
from shipyard.batch._manifest import MANIFEST_NAME, JobManifest, ShardRecord
from shipyard.batch._options import BatchOptions, BatchSummary
from shipyard.batch._output import FileOutput, Output
from shipyard.batch._plan import Plan, Shard, make_plan
from shipyard.batch._pool import Pool, worker_threads
from shipyard.batch._progress import JobProgress
from shipyard.batch._shard import ShardResult, ShardTask, run_shard
from shipyard.batch._worker import WorkerSpec, make_scorer
from shipyard.errors import ConfigError, InvalidInputError

__all__ = ["run_job"]


def _job_options(opts: BatchOptions, plan: Plan, output: Output) -> dict[str, Any]:
    """What decides the rows of the output; a resume must see the same."""
    return {
        # Masked: the manifest is a plain file beside the output, and the credentials in a
        # URI do not change which model it names.
        "model": None if opts.model_uri is None else mask_credentials(opts.model_uri),
        "service": opts.service,
        "inputs": [f.path for f in plan.files],
        "columns": opts.columns,
        "id_column": opts.id_column,
        "keep_columns": opts.keep_columns,
        "output_format": output.part_format,
        "input_as": opts.input_as,
        "shard_rows": opts.shard_rows,
        "shard_bytes": opts.shard_bytes,
    }


def _open_manifest(opts: BatchOptions, plan: Plan, output: Output) -> tuple[JobManifest, bool]:
    """The job's manifest, and whether the job is new (nothing of it was there before)."""
    options = _job_options(opts, plan, output)
    fresh = False
    if opts.overwrite:
        output.clear()
    manifest = JobManifest.read(output.staging) if output.staging.exists() else None
    where = output.location
    if manifest is not None and not (manifest.complete and not opts.resume):
        if not opts.resume:
            raise ConfigError(
                f"An unfinished job is writing {where} ({len(manifest.done)} of "
                f"{manifest.shards_total} shards done); pass --resume to continue it or "
                "--overwrite to start over."
            )
        manifest.check_resumable(options, where)
    elif output.exists():
        raise ConfigError(
            f"The output {where} already exists; pass --overwrite to replace it, or "
            "choose another --output."
        )
    else:
        manifest = JobManifest(options=options)
        fresh = True
    output.prepare()
    # Keep only shards whose input is unchanged (same file, size, mtime and range).
    keys = {s.index: s.key(plan) for s in plan.shards}
    manifest.done = {i: r for i, r in manifest.done.items() if keys.get(i) == r.key}
    output.reconcile(manifest)
    manifest.shards_total = len(plan.shards)
    manifest.complete = False
    manifest.write(output.staging)
    return manifest, fresh


def _forget_unstarted(output: Output) -> None:
    """A new job that failed before its first shard (the model did not load, say) leaves
    nothing behind, so the same command, once fixed, runs again with no --overwrite. Only
    what the job created and left empty is removed."""
    with contextlib.suppress(OSError):
        (output.staging / MANIFEST_NAME).unlink()
    for folder in (output.staging / "_rejects", output.staging):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _features(opts: BatchOptions, default: list[str] | None, plan: Plan) -> list[str]:
    """The model's input columns: ``--columns``, else the model's own (``default``), else
    every input column not carried over."""
    import pyarrow as pa

    carry = [c for c in [opts.id_column, *opts.keep_columns] if c]
    features = opts.columns or default
    if not features:
        first = pa.ipc.read_schema(pa.py_buffer(plan.files[0].schema))
        features = [n for n in first.names if n not in carry]
    for f in plan.files:
        names = pa.ipc.read_schema(pa.py_buffer(f.schema)).names
        missing = [c for c in dict.fromkeys([*features, *carry]) if c not in names]
        if missing:
            raise InvalidInputError(
                f"{f.path} (all rows) has no column {', '.join(map(repr, missing))}; it has: "
                f"{', '.join(names)}. Choose columns with --columns, --id-column and "
                "--keep-columns."
            )
    return list(features)


def _thread_limit(threads: int) -> contextlib.AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[Any] = threadpool_limits(limits=threads)
    return limits


class _Coordinator:
    def __init__(
        self,
        plan: Plan,
        manifest: JobManifest,
        output: Output,
        pending: deque[ShardTask],
        progress: JobProgress,
    ) -> None:
        self.plan = plan
        self.manifest = manifest
        self.output = output
        self.pending = pending
        self.progress = progress
        self.remaining = len(pending)

    def record(self, result: ShardResult) -> None:
        shard = self.plan.shards[result.index]
        self.manifest.done[result.index] = ShardRecord(
            key=shard.key(self.plan),
            rows=result.rows,
            rejected=result.rejected,
            part=result.part,
            rejects=result.rejects,
            node=result.node,
        )
        self.manifest.write(self.output.staging)
        self.output.shard_done(self.plan, self.manifest)
        self.progress.correct_total(result.rows + result.rejected - shard.est_rows)
        self.remaining -= 1

    def _handle(self, pool: Pool, msg: tuple[Any, ...]) -> ShardResult | None:
        """Apply one worker message; a finished shard's result is returned, not recorded."""
        kind = msg[0]
        if kind == "progress":
            self.progress.advance(msg[2], msg[3])
            return None
        child = pool.handle(msg, self.plan)
        if child is not None and kind == "done":
            child.shard = None
            result: ShardResult = msg[2]
            return result
        return None

    def _feed(self, pool: Pool) -> None:
        for child in pool.idle():
            if not self.pending:
                break
            task = self.pending.popleft()
            child.shard = task.shard.index
            child.conn.send(task)

    def run_pool(self, pool: Pool) -> None:
        """Hand out shards to the workers until every shard is recorded."""
        self._feed(pool)
        while self.remaining:
            finished = [r for m in pool.receive(1.0) if (r := self._handle(pool, m))]
            # The next shard goes out before the manifest write (an fsync): a worker
            # never waits for the bookkeeping of the shard it just finished.
            self._feed(pool)
            for result in finished:
                self.record(result)

    def run_here(self, scorer: Any) -> None:
        """Run every shard in this process."""
        while self.pending:
            task = self.pending.popleft()
            self.record(run_shard(task, scorer, self.progress.advance))


@contextlib.contextmanager
def _stopping(pool: Pool) -> Iterator[None]:
    try:
        yield
    except BaseException:
        pool.stop(graceful=False)
        raise
    pool.stop(graceful=True)


def run_job(opts: BatchOptions, pool: Pool | None = None) -> BatchSummary:
    """Run the job ``opts`` describes; see ``shipyard.batch.predict``.

    ``pool``: workers already started for this job (``_pool.start_early``); they are
    stopped however the job ends.
    """
    started = time.perf_counter()
    output: Output | None = None
    try:
        if is_database_url(opts.output):
            output = DatabaseOutput(opts.output, opts.table, opts.staging_dir)
        else:
            output = FileOutput(opts.output, opts.format)
        return _run_with(opts, output, started, pool)
    except BaseException:
        if pool is not None:
            pool.stop(graceful=False)
        raise
    finally:
        # Also on failure: a database output holds pooled connections until closed.
        if output is not None:
            output.close()


def _tasks(
    opts: BatchOptions, plan: Plan, output: Output, todo: list[Shard], features: list[str]
) -> deque[ShardTask]:
    carry = tuple(c for c in [opts.id_column, *opts.keep_columns] if c)
    return deque(
        ShardTask(
            shard=s,
            file=plan.files[s.file],
            features=tuple(features),
            carry=carry,
            batch_size=opts.batch_size,
            on_error=opts.on_error,
            part_path=output.part_path(s.index),
            part_format=output.part_format,
            rejects_path=output.rejects_path(s.index),
            row_numbers=output.row_numbers,
        )
        for s in todo
    )


def _spec(opts: BatchOptions, procs: int) -> WorkerSpec:
    service_url = headers = None
    if opts.service is not None:
        from shipyard.batch._remote import resolve_service, service_headers

        service_url = resolve_service(opts.service)
        headers = opts.service_headers or service_headers(opts.service)
    threads = worker_threads(procs)
    return WorkerSpec(
        opts.model_uri,
        service_url,
        opts.input_as,
        threads,
        opts.timeout,
        headers,
        opts.load_trust(),
    )


def _run_with(
    opts: BatchOptions, output: Output, started: float, pool: Pool | None
) -> BatchSummary:
    plan = make_plan(
        opts.input,
        input_format=opts.input_format,
        shard_rows=opts.shard_rows,
        shard_bytes=opts.shard_bytes,
    )
    manifest, fresh = _open_manifest(opts, plan, output)
    try:
        return _run_shards(opts, plan, output, manifest, started, pool)
    except BaseException:
        if fresh and not manifest.done:
            _forget_unstarted(output)
        raise


def _run_shards(
    opts: BatchOptions,
    plan: Plan,
    output: Output,
    manifest: JobManifest,
    started: float,
    pool: Pool | None,
) -> BatchSummary:
    todo = [s for s in plan.shards if s.index not in manifest.done]
    procs = max(1, min(opts.workers, len(todo)))
    if pool is not None and not todo:
        pool.stop(graceful=False)  # nothing left to predict
        pool = None
    if pool is not None:
        pool.keep(procs)
    elif procs > 1:
        pool = Pool(procs, _spec(opts, procs))
    done_rows = sum(r.rows + r.rejected for r in manifest.done.values())

    def progress_for(name: str) -> JobProgress:
        return JobProgress(opts.progress, plan.est_rows, done_rows, name)

    if pool is not None:
        with _stopping(pool):
            # The workers load the model; the first one ready says what it is called
            # and which input columns it names.
            name, default = pool.wait_ready(plan)
            pending = _tasks(opts, plan, output, todo, _features(opts, default, plan))
            progress = progress_for(name)
            try:
                coordinator = _Coordinator(plan, manifest, output, pending, progress)
                coordinator.run_pool(pool)
            finally:
                progress.close()
    else:
        scorer = make_scorer(_spec(opts, 1))
        try:
            features = _features(opts, scorer.features_default(), plan)
            pending = _tasks(opts, plan, output, todo, features)
            progress = progress_for(scorer.name)
            try:
                coordinator = _Coordinator(plan, manifest, output, pending, progress)
                with _thread_limit(worker_threads(1)):
                    coordinator.run_here(scorer)
            finally:
                progress.close()
        finally:
            scorer.close()
    output.shard_done(plan, manifest)
    rejects = output.finalize(plan, manifest)
    seconds = time.perf_counter() - started
    return BatchSummary(
        rows=sum(r.rows for r in manifest.done.values()),
        rejected=sum(r.rejected for r in manifest.done.values()),
        seconds=seconds,
        rows_per_second=(progress.rows / seconds) if seconds > 0 else 0.0,
        output=output.location,
        rejects=rejects,
        shards=len(plan.shards),
        shards_resumed=len(plan.shards) - len(todo),
        workers=len(pool.children) if pool is not None else 1,
        nodes=dict(Counter(r.node for r in manifest.done.values() if r.node)),
    )
