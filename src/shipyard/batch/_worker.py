"""The worker process: load the model once, then read, predict and write shards.

Started with the ``spawn`` method (no inherited threads or locks). Only stdlib is
imported at module level so thread-count variables are set before numpy and the
model's framework load. A worker dies with its parent: on Linux the kernel sends it
SIGKILL (``PR_SET_PDEATHSIG``), elsewhere a watchdog thread notices the new parent id.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["WorkerSpec", "worker_main"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class WorkerSpec:
    """How every worker builds its runtime (small and picklable)."""

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


def make_runtime(spec: WorkerSpec) -> Any:
    if spec.service_url is not None:
        from shipyard.batch._remote import RemoteRuntime

        return RemoteRuntime(spec.service_url, timeout=spec.timeout)
    from shipyard.batch._runtime import LocalRuntime

    if spec.model_uri is None:
        raise ValueError("a worker needs a model URI or a service URL")
    return LocalRuntime(spec.model_uri, spec.input_as)  # type: ignore[arg-type]


def worker_main(spec: WorkerSpec, parent: int, tasks: Any, results: Any) -> None:
    """Entry point of a worker process; talks to the parent only through the two queues."""
    _die_with_parent(parent)
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(spec.threads))
    from shipyard.batch._shard import error_payload, run_shard

    pid = os.getpid()
    try:
        runtime = make_runtime(spec)
    except BaseException as err:
        results.put(("fatal", pid, -1, *error_payload(err)))
        return
    results.put(("ready", pid))

    def progress(rows: int, rejected: int) -> None:
        results.put(("progress", pid, rows, rejected))

    try:
        while True:
            task = tasks.get()
            if task is None:
                break
            results.put(("start", pid, task.shard.index))
            try:
                result = run_shard(task, runtime, progress)
            except BaseException as err:
                results.put(("fatal", pid, task.shard.index, *error_payload(err)))
                return
            results.put(("done", pid, result))
    finally:
        runtime.close()
