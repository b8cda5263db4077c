"""The worker processes of a job: start them, talk to them, stop them.

One process, ``python -m shipyard.batch._worker FD1 ... FDn``, loads the model and
forks the n workers, each with one socket to this process (see ``_worker`` for the
messages). A pool can be started before the job is planned, so the model loads while
the coordinator imports its own libraries and reads the input's metadata.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from shipyard.batch._worker import THREAD_VARS, WorkerSpec
from shipyard.errors import PredictorError

if TYPE_CHECKING:
    from shipyard.batch._plan import Plan

__all__ = ["Child", "Pool", "apply_worker_state", "worker_threads"]


def worker_threads(processes: int) -> int:
    """Threads for each numeric library in each of ``processes`` processes: the cores shared."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))


class Forked:
    """A worker forked by the pool's loader process: not our child, so it is known by the
    pid it reports and watched by signalling it (its parent reaps it)."""

    def __init__(self, loader: subprocess.Popen[bytes]) -> None:
        self.loader = loader
        self.pid: int | None = None

    def poll(self) -> int | None:
        if self.pid is None:
            return self.loader.poll()
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1  # gone; its exit status went to its parent
        return None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("shipyard batch worker", timeout or 0.0)
            time.sleep(0.01)
        return code

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Child:
    def __init__(self, proc: Forked, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.ready = False
        self.info: tuple[str, list[str] | None] | None = None
        """(model name, its default input columns), sent when ready."""
        self.shard: int | None = None
        """The shard it works on, None when idle."""


class Pool:
    """Worker processes, one socket each, and who works on which shard."""

    def __init__(self, n: int, spec: WorkerSpec) -> None:
        env = dict(os.environ)
        for var in THREAD_VARS:
            env.setdefault(var, str(spec.threads))
        self.children: list[Child] = []
        self.loader: subprocess.Popen[bytes] | None = None
        pairs = [socket.socketpair() for _ in range(n)]
        try:
            fds = [theirs.fileno() for _, theirs in pairs]
            self.loader = subprocess.Popen(
                [sys.executable, "-m", "shipyard.batch._worker", *map(str, fds)],
                pass_fds=fds,
                env=env,
                stdin=subprocess.DEVNULL,
            )
            for mine, theirs in pairs:
                theirs.close()
                self.children.append(Child(Forked(self.loader), Connection(mine.detach())))
            self.started = list(self.children)
            """Every worker of the pool, also those ``keep`` let go."""
            self.children[0].conn.send(("spec", spec, os.getpid()))
        except BaseException:
            for mine, theirs in pairs:
                mine.close()
                theirs.close()
            self.stop(graceful=False)
            raise

    def keep(self, n: int) -> None:
        """Stop all but the first ``n`` workers (a job with fewer shards than workers).

        Closing a worker's socket ends it (before or after the fork)."""
        extra, self.children = self.children[n:], self.children[:n]
        for child in extra:
            child.conn.close()

    def by_pid(self, pid: int) -> Child | None:
        return next((c for c in self.children if c.proc.pid == pid), None)

    def by_conn(self, conn: object) -> Child:
        return next(c for c in self.children if c.conn is conn)

    def idle(self) -> list[Child]:
        return [c for c in self.children if c.ready and c.shard is None]

    def receive(self, timeout: float) -> list[tuple[Any, ...]]:
        """Messages ready within ``timeout`` s; a worker gone without a word is an error."""
        msgs: list[tuple[Any, ...]] = []
        for conn in wait([c.conn for c in self.children], timeout):
            child = self.by_conn(conn)
            try:
                while True:
                    msg = child.conn.recv()
                    if child.proc.pid is None:
                        child.proc.pid = msg[1]  # a forked worker's first word names it
                    msgs.append(msg)
                    if not child.conn.poll():
                        break
            except (EOFError, OSError):
                msgs.append(("died", child.proc.pid, child))
        return msgs

    def handle(self, msg: tuple[Any, ...], plan: Plan) -> Child | None:
        """Apply a worker's state message; errors and deaths are raised here."""
        kind, pid = msg[0], msg[1]
        child = msg[2] if kind == "died" else self.by_pid(pid)
        if child is None:
            return None
        if kind == "start":
            child.shard = msg[2]
        elif kind == "died":
            raise self.died(child, plan)
        else:
            apply_worker_state(child, msg)
        return child

    def wait_ready(self, plan: Plan) -> tuple[str, list[str] | None]:
        """Wait for the first worker to load the model; (its name, default columns)."""
        while True:
            for msg in self.receive(1.0):
                child = self.handle(msg, plan)
                if child is not None and child.info is not None:
                    return child.info

    def died(self, child: Child, plan: Plan) -> PredictorError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=5)
        who = f"pid {child.proc.pid}" if child.proc.pid is not None else "the model loader"
        where = f" on {plan.shards[child.shard].describe(plan)}" if child.shard is not None else ""
        return PredictorError(
            f"A worker process ({who}) died{where}. "
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
        if self.loader is not None:
            # It exits when its workers have; killing it takes any left with it.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.loader.wait(timeout=10 if graceful else 0.5)
            if self.loader.poll() is None:
                self.loader.kill()
            self.loader.wait()


def apply_worker_state(child: Any, msg: tuple[Any, ...]) -> None:
    """The state messages of both engines' workers (``_worker``, ``_ray``): ``ready``
    (the model's name and default input columns) is recorded, ``fatal`` raised here as
    the worker's error; anything else changes nothing."""
    if msg[0] == "ready":
        child.ready = True
        child.info = (msg[2], msg[3])
    elif msg[0] == "fatal":
        from shipyard.batch._shard import error_from_payload

        raise error_from_payload(msg[3], msg[4])


def start_early(
    model_uri: str | None,
    input_as: str,
    timeout: float,
    workers: int,
    service: Any,
    trust: dict[str, Any] | None = None,
) -> Pool | None:
    """The workers of a job that will use them, started before it is planned (or None).

    Only for a model loaded from ``model_uri`` (a service's URL is resolved later):
    their start-up (imports, model load: seconds) then overlaps the coordinator's own
    imports and the reading of the input's metadata. A job that turns out to have
    fewer shards than workers stops the extra ones.
    """
    if workers < 2 or model_uri is None or service is not None:
        return None
    spec = WorkerSpec(model_uri, None, input_as, worker_threads(workers), timeout, trust=trust)
    return Pool(workers, spec)
