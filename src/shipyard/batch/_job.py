"""Run a batch job: plan, check the output, start workers, hand out shards, finish.

The coordinating process predicts too: it takes shards between the workers' messages,
so work starts at once while the other workers start up and load the model (process
start-up is most of the overhead of a short job). Only shard descriptions, progress
counts and results cross process boundaries; rows never do.
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
from shipyard.batch._plan import Plan, make_plan
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


def _features(opts: BatchOptions, runtime: Any, plan: Plan) -> list[str]:
    import pyarrow as pa

    carry = [c for c in [opts.id_column, *opts.keep_columns] if c]
    features = opts.columns or runtime.features_default()
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
    ) -> None:
        self.plan = plan
        self.manifest = manifest
        self.output = output
        self.pending = pending
        self.progress = progress
        self.remaining = len(pending)
        self.pool: _Pool | None = None

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

    def handle(self, msg: tuple[Any, ...]) -> None:
        kind, pid = msg[0], msg[1]
        if kind == "progress":
            self.progress.advance(msg[2], msg[3])
            return
        child = self.pool.by_pid(pid) if self.pool is not None else None
        if child is None:
            return
        if kind == "ready":
            child.ready = True
        elif kind == "start":
            child.shard = msg[2]
        elif kind == "done":
            child.shard = None
            self.record(msg[2])
        elif kind == "fatal":
            raise error_from_payload(msg[3], msg[4])
        elif kind == "died":
            raise self.pool.died(child, self.plan)  # type: ignore[union-attr]

    def pump(self, block: float = 0.0) -> None:
        """Take the workers' messages (waiting up to ``block`` s) and feed idle workers."""
        pool = self.pool
        if pool is None:
            return
        for msg in pool.receive(block):
            self.handle(msg)
        for child in pool.idle():
            if not self.pending:
                break
            task = self.pending.popleft()
            child.shard = task.shard.index
            child.conn.send(task)

    def run(self, runtime: Any) -> None:
        def on_batch(rows: int, rejected: int) -> None:
            self.progress.advance(rows, rejected)
            self.pump()

        while self.remaining:
            self.pump()
            if self.pending:
                task = self.pending.popleft()
                self.record(run_shard(task, runtime, on_batch))
            else:
                self.pump(block=0.2)


@contextlib.contextmanager
def _stopping(pool: _Pool | None) -> Iterator[None]:
    try:
        yield
    except BaseException:
        if pool is not None:
            pool.stop(graceful=False)
        raise
    if pool is not None:
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


def _run_with(opts: BatchOptions, output: Output, started: float) -> BatchSummary:
    plan = make_plan(
        opts.input,
        input_format=opts.input_format,
        shard_rows=opts.shard_rows,
        shard_bytes=opts.shard_bytes,
    )
    manifest = _open_manifest(opts, plan, output)
    todo = [s for s in plan.shards if s.index not in manifest.done]
    n_children = min(opts.workers, len(todo)) - 1
    threads = max(1, (os.cpu_count() or 1) // max(1, n_children + 1))
    service_url = None
    if opts.service is not None:
        from shipyard.batch._remote import resolve_service

        service_url = resolve_service(opts.service)
    spec = WorkerSpec(opts.model_uri, service_url, opts.input_as, threads, opts.timeout)
    # Workers start first: they load the model while this process does the same.
    pool = _Pool(n_children, spec) if n_children > 0 else None
    with _stopping(pool):
        runtime = make_runtime(spec)
        try:
            features = _features(opts, runtime, plan)
            carry = tuple(c for c in [opts.id_column, *opts.keep_columns] if c)
            pending = deque(
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
            done_rows = sum(r.rows + r.rejected for r in manifest.done.values())
            progress = JobProgress(opts.progress, plan.est_rows, done_rows, runtime.name)
            try:
                coordinator = _Coordinator(plan, manifest, output, pending, progress)
                coordinator.pool = pool
                with _thread_limit(threads):
                    coordinator.run(runtime)
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
        workers=n_children + 1,
    )
