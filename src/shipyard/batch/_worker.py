"""The worker processes: load the model once, fork the workers, read, predict, write.

One process is started as ``python -m shipyard.batch._worker FD1 ... FDn`` (not with
``multiprocessing``: that re-runs the caller's main script in every child, a trap for
any script that calls ``shipyard.batch.predict`` without an ``if __name__ ==
"__main__"`` guard). It imports the libraries and loads the model once, then forks one
worker per socket: the workers share the loaded model copy-on-write and start predicting
at once, where N separately started workers each paid the imports and the unpickling
(seconds, on the cores the job needs). It is our own process, with no threads of its
own when it forks. Each worker talks to the coordinating process over its socket, with
pickled messages:

    parent -> FD1:    ("spec", WorkerSpec, parent_pid)  (read by the forking process)
    parent -> worker: ShardTask ... , then None
    worker -> parent: ("ready", pid, model name, default input columns) | ("start", pid,
                      shard) | ("progress", pid, rows, rejected) | ("done", pid,
                      ShardResult) | ("fatal", pid, shard, error class name, message)

Workers die with their parent (the forking process), which dies with the coordinator:
on Linux the kernel sends SIGKILL (``PR_SET_PDEATHSIG``), elsewhere a watchdog thread
notices the new parent id.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["THREAD_VARS", "WorkerSpec", "fork_workers", "make_scorer", "serve"]

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
    #: Headers each request to the service carries (its bearer token, when it wants one).
    service_headers: dict[str, str] | None = None
    #: ``load_model``'s trust options for ``model_uri`` (``trusted``, ``sha256``).
    trust: dict[str, Any] | None = None
    #: ``engine="ray"``: where on the cluster the values of the ``{{secret.NAME}}``
    #: references in ``model_uri`` and ``service_headers`` are (``shipyard._ray.secrets``).
    secrets_scope: str | None = None
    #: ``load_model(lazy=True)``: a tree ensemble served from its compiled cache alone,
    #: without importing its framework (each Ray actor loads its own copy; the local
    #: engine's workers share one full load across their fork instead).
    lazy: bool = False


def _die_with_parent(parent: int) -> None:
    armed = False
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(1, signal.SIGKILL) == 0  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    if armed:
        return  # no watchdog thread: the process forks later, and must have no threads

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="shipyard-parent-watch", daemon=True).start()


def make_scorer(spec: WorkerSpec) -> Any:
    if spec.service_url is not None:
        from shipyard.batch._remote import RemoteScorer

        return RemoteScorer(spec.service_url, timeout=spec.timeout, headers=spec.service_headers)
    from shipyard.batch._scorer import LocalScorer

    if spec.model_uri is None:
        raise ValueError("a worker needs a model URI or a service URL")
    return LocalScorer(spec.model_uri, spec.input_as, spec.trust, spec.lazy)  # type: ignore[arg-type]


def serve(conn: Any, scorer: Any) -> None:
    """Run the shards sent over ``conn`` (a ``multiprocessing.connection.Connection``)."""
    from shipyard.batch._shard import error_payload, run_shard

    pid = os.getpid()
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


def _fatal(conns: list[Any], err: BaseException) -> None:
    from shipyard.batch._shard import error_payload

    for conn in conns:
        with contextlib.suppress(OSError):
            conn.send(("fatal", os.getpid(), -1, *error_payload(err)))


def fork_workers(conns: list[Any]) -> None:
    """Load the model once, then fork one worker per connection and wait for them all."""
    kind, spec, parent = conns[0].recv()
    if kind != "spec":
        raise SystemExit(f"shipyard batch worker: expected a spec, got {kind!r}")
    _die_with_parent(parent)
    # A local model is loaded here, once, and shared; a service's HTTP client is made
    # in each worker (a connection pool must not be shared across a fork).
    scorer = None
    if spec.service_url is None:
        try:
            scorer = make_scorer(spec)
        except BaseException as err:
            _fatal(conns, err)
            return
    zygote = os.getpid()
    pids = []
    for i, conn in enumerate(conns):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for j, other in enumerate(conns):
                    if j != i:
                        other.close()
                _die_with_parent(zygote)
                try:
                    mine = scorer if scorer is not None else make_scorer(spec)
                except BaseException as err:
                    _fatal([conn], err)
                    return
                serve(conn, mine)
            except (BrokenPipeError, ConnectionResetError, EOFError):
                pass  # the coordinator closed this worker's socket: not needed after all
            except BaseException:
                code = 1
                raise
            finally:
                # Every part is renamed into place and reported: skip the interpreter's
                # teardown (freeing numpy, scipy and scikit-learn module by module took
                # up to a second, with the coordinator waiting).
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    for conn in conns:
        conn.close()
    for pid in pids:
        os.waitpid(pid, 0)


def main(argv: list[str]) -> None:
    from multiprocessing.connection import Connection

    fork_workers([Connection(int(fd)) for fd in argv[1:]])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
