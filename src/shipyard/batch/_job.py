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
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from shipyard.batch._db import DatabaseOutput, is_database_url
from shipyard.batch._manifest import JobManifest, ShardRecord
from shipyard.batch._options import BatchOptions, BatchSummary
from shipyard.batch._output import FileOutput, Output
from shipyard.batch._plan import Plan, Shard, make_plan
from shipyard.batch._progress import JobProgress
from shipyard.batch._shard import ShardResult, ShardTask, error_from_payload, run_shard
from shipyard.batch._worker import THREAD_VARS, WorkerSpec, make_runtime
from shipyard.errors import ConfigError, InvalidInputError, PredictorError

__all__ = ["run_job"]


def _job_options(opts: BatchOptions, plan: Plan, output: Output) -> dict[str, Any]:
    """What decides the rows of the output; a resume must see the same."""
    return {
        "model": opts.model_uri,
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


def _open_manifest(opts: BatchOptions, plan: Plan, output: Output) -> JobManifest:
    options = _job_options(opts, plan, output)
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
    output.prepare()
    # Keep only shards whose input is unchanged (same file, size, mtime and range).
    keys = {s.index: s.key(plan) for s in plan.shards}
    manifest.done = {i: r for i, r in manifest.done.items() if keys.get(i) == r.key}
    output.reconcile(manifest)
    manifest.shards_total = len(plan.shards)
    manifest.complete = False
    manifest.write(output.staging)
    return manifest


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


class _Child:
    def __init__(self, proc: subprocess.Popen[bytes], conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.ready = False
        self.info: tuple[str, list[str] | None] | None = None
        """(model name, its default input columns), sent when ready."""
        self.shard: int | None = None
        """The shard it works on, None when idle."""


class _Pool:
    """Worker processes, one socket each, and who works on which shard."""

    def __init__(self, n: int, spec: WorkerSpec) -> None:
        env = dict(os.environ)
        for var in THREAD_VARS:
            env.setdefault(var, str(spec.threads))
        self.children: list[_Child] = []
        try:
            for _ in range(n):
                mine, theirs = socket.socketpair()
                with theirs:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "shipyard.batch._worker", str(theirs.fileno())],
                        pass_fds=[theirs.fileno()],
                        env=env,
                        stdin=subprocess.DEVNULL,
                    )
                conn = Connection(mine.detach())
                self.children.append(_Child(proc, conn))
                conn.send(("spec", spec, os.getpid()))
        except BaseException:
            self.stop(graceful=False)
            raise

    def by_pid(self, pid: int) -> _Child | None:
        return next((c for c in self.children if c.proc.pid == pid), None)

    def idle(self) -> list[_Child]:
        return [c for c in self.children if c.ready and c.shard is None]

    def receive(self, timeout: float) -> list[tuple[Any, ...]]:
        """Messages ready within ``timeout`` s; a worker gone without a word is an error."""
        msgs: list[tuple[Any, ...]] = []
        for conn in wait([c.conn for c in self.children], timeout):
            child = next(c for c in self.children if c.conn is conn)
            try:
                while True:
                    msgs.append(child.conn.recv())
                    if not child.conn.poll():
                        break
            except (EOFError, OSError):
                msgs.append(("died", child.proc.pid))
        return msgs

    def handle(self, msg: tuple[Any, ...], plan: Plan) -> _Child | None:
        """Apply a worker's state message; errors and deaths are raised here."""
        kind, pid = msg[0], msg[1]
        child = self.by_pid(pid)
        if child is None:
            return None
        if kind == "ready":
            child.ready = True
            child.info = (msg[2], msg[3])
        elif kind == "start":
            child.shard = msg[2]
        elif kind == "fatal":
            raise error_from_payload(msg[3], msg[4])
        elif kind == "died":
            raise self.died(child, plan)
        return child

    def wait_ready(self, plan: Plan) -> tuple[str, list[str] | None]:
        """Wait for the first worker to load the model; (its name, default columns)."""
        while True:
            for msg in self.receive(1.0):
                child = self.handle(msg, plan)
                if child is not None and child.info is not None:
                    return child.info

    def died(self, child: _Child, plan: Plan) -> PredictorError:
        code = child.proc.wait()
        where = f" on {plan.shards[child.shard].describe(plan)}" if child.shard is not None else ""
        return PredictorError(
            f"A worker process (pid {child.proc.pid}) died with exit code {code}{where}. "
            "Finished shards are kept: fix the cause and run again with --resume."
        )

    def stop(self, graceful: bool) -> None:
        # A worker still loading the model when the work ran out is not waited for.
        polite = [c for c in self.children if graceful and c.ready]
        for child in self.children:
            if child in polite:
                with contextlib.suppress(OSError):
                    child.conn.send(None)
            child.conn.close()
        for child in self.children:
            if child in polite:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=10)
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()


class _Coordinator:
    def __init__(
        self,
        plan: Plan,
        manifest: JobManifest,
        output: Output,
        pending: deque[ShardTask],
        progress: JobProgress,
        pool: _Pool | None = None,
    ) -> None:
        self.plan = plan
        self.manifest = manifest
        self.output = output
        self.pending = pending
        self.progress = progress
        self.remaining = len(pending)
        self.pool = pool

    def record(self, result: ShardResult) -> None:
        shard = self.plan.shards[result.index]
        self.manifest.done[result.index] = ShardRecord(
            key=shard.key(self.plan),
            rows=result.rows,
            rejected=result.rejected,
            part=result.part,
            rejects=result.rejects,
        )
        self.manifest.write(self.output.staging)
        self.output.shard_done(self.plan, self.manifest)
        self.progress.correct_total(result.rows + result.rejected - shard.est_rows)
        self.remaining -= 1

    def _handle(self, pool: _Pool, msg: tuple[Any, ...]) -> ShardResult | None:
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

    def _feed(self, pool: _Pool) -> None:
        for child in pool.idle():
            if not self.pending:
                break
            task = self.pending.popleft()
            child.shard = task.shard.index
            child.conn.send(task)

    def run_pool(self, pool: _Pool) -> None:
        """Hand out shards to the workers until every shard is recorded."""
        self._feed(pool)
        while self.remaining:
            finished = [r for m in pool.receive(1.0) if (r := self._handle(pool, m))]
            # The next shard goes out before the manifest write (an fsync): a worker
            # never waits for the bookkeeping of the shard it just finished.
            self._feed(pool)
            for result in finished:
                self.record(result)

    def run_here(self, runtime: Any) -> None:
        """Run every shard in this process."""
        while self.pending:
            task = self.pending.popleft()
            self.record(run_shard(task, runtime, self.progress.advance))


@contextlib.contextmanager
def _stopping(pool: _Pool) -> Iterator[None]:
    try:
        yield
    except BaseException:
        pool.stop(graceful=False)
        raise
    pool.stop(graceful=True)


def run_job(opts: BatchOptions) -> BatchSummary:
    """Run the job ``opts`` describes; see ``shipyard.batch.predict``."""
    started = time.perf_counter()
    if is_database_url(opts.output):
        output: Output = DatabaseOutput(opts.output, opts.table, opts.staging_dir)
    else:
        output = FileOutput(opts.output, opts.format)
    try:
        return _run_with(opts, output, started)
    finally:
        # Also on failure: a database output holds pooled connections until closed.
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


def _run_with(opts: BatchOptions, output: Output, started: float) -> BatchSummary:
    plan = make_plan(
        opts.input,
        input_format=opts.input_format,
        shard_rows=opts.shard_rows,
        shard_bytes=opts.shard_bytes,
    )
    manifest = _open_manifest(opts, plan, output)
    todo = [s for s in plan.shards if s.index not in manifest.done]
    procs = max(1, min(opts.workers, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // procs)
    service_url = None
    if opts.service is not None:
        from shipyard.batch._remote import resolve_service

        service_url = resolve_service(opts.service)
    spec = WorkerSpec(opts.model_uri, service_url, opts.input_as, threads, opts.timeout)
    done_rows = sum(r.rows + r.rejected for r in manifest.done.values())

    def progress_for(name: str) -> JobProgress:
        return JobProgress(opts.progress, plan.est_rows, done_rows, name)

    if procs > 1:
        pool = _Pool(procs, spec)
        with _stopping(pool):
            # The workers load the model; the first one ready says what it is called
            # and which input columns it names.
            name, default = pool.wait_ready(plan)
            pending = _tasks(opts, plan, output, todo, _features(opts, default, plan))
            progress = progress_for(name)
            try:
                coordinator = _Coordinator(plan, manifest, output, pending, progress, pool)
                coordinator.run_pool(pool)
            finally:
                progress.close()
    else:
        runtime = make_runtime(spec)
        try:
            features = _features(opts, runtime.features_default(), plan)
            pending = _tasks(opts, plan, output, todo, features)
            progress = progress_for(runtime.name)
            try:
                coordinator = _Coordinator(plan, manifest, output, pending, progress)
                with _thread_limit(threads):
                    coordinator.run_here(runtime)
            finally:
                progress.close()
        finally:
            runtime.close()
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
        workers=procs,
    )
