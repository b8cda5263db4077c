"""The worker process: load the model once, then read, predict and write shards.

Started as ``python -m shipyard.batch._worker FD`` (not with ``multiprocessing``: that
re-runs the caller's main script in every child, a trap for any script that calls
``shipyard.batch.predict`` without an ``if __name__ == "__main__"`` guard). It talks
to the coordinating process over one socket (FD), with pickled messages:

    parent -> worker: ("spec", WorkerSpec, parent_pid), then ShardTask ... , then None
    worker -> parent: ("ready", pid, model name, default input columns) | ("start", pid,
                      shard) | ("progress", pid, rows, rejected) | ("done", pid,
                      ShardResult) | ("fatal", pid, shard, error class name, message)

A worker dies with its parent: on Linux the kernel sends it SIGKILL
(``PR_SET_PDEATHSIG``), elsewhere a watchdog thread notices the new parent id.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["THREAD_VARS", "WorkerSpec", "make_scorer", "worker_main"]

#: Thread-pool sizes of the numeric libraries, set per worker so N workers share the
#: cores instead of each starting one thread per core.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class WorkerSpec:
    """How every worker builds its scorer (small and picklable)."""

    model_uri: str | None
    service_url: str | None
    input_as: str
    threads: int
    timeout: float = 60.0


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="shipyard-parent-watch", daemon=True).start()


def make_scorer(spec: WorkerSpec) -> Any:
    if spec.service_url is not None:
        from shipyard.batch._remote import RemoteScorer

        return RemoteScorer(spec.service_url, timeout=spec.timeout)
    from shipyard.batch._scorer import LocalScorer

    if spec.model_uri is None:
        raise ValueError("a worker needs a model URI or a service URL")
    return LocalScorer(spec.model_uri, spec.input_as)  # type: ignore[arg-type]


def worker_main(conn: Any) -> None:
    """Serve shards over ``conn`` (a ``multiprocessing.connection.Connection``)."""
    kind, spec, parent = conn.recv()
    if kind != "spec":
        raise SystemExit(f"shipyard batch worker: expected a spec, got {kind!r}")
    _die_with_parent(parent)
    from shipyard.batch._shard import error_payload, run_shard

    pid = os.getpid()
    try:
        scorer = make_scorer(spec)
    except BaseException as err:
        conn.send(("fatal", pid, -1, *error_payload(err)))
        return
    conn.send(("ready", pid, scorer.name, scorer.features_default()))

    def progress(rows: int, rejected: int) -> None:
        conn.send(("progress", pid, rows, rejected))

    try:
        while True:
            try:
                task = conn.recv()
            except EOFError:  # the parent is gone or closed the socket
                break
            if task is None:
                break
            conn.send(("start", pid, task.shard.index))
            try:
                result = run_shard(task, scorer, progress)
            except BaseException as err:
                conn.send(("fatal", pid, task.shard.index, *error_payload(err)))
                return
            conn.send(("done", pid, result))
    finally:
        scorer.close()


def main(argv: list[str]) -> None:
    from multiprocessing.connection import Connection

    worker_main(Connection(int(argv[1])))
    # Every part is renamed into place and reported: skip the interpreter's teardown
    # (freeing numpy, scipy and scikit-learn module by module took up to a second, with
    # the coordinator waiting), as multiprocessing's children do after their target.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
