"""The supervisor: reserves the ports, runs N worker processes, replaces the ones that die,
drains them on SIGTERM/SIGINT, and answers the control socket (see ``control``).

It imports no numpy, no web framework and no grpc: workers are fresh interpreters
(``python -m shipyard.serving.worker``), never forks of this process, so grpc's fork
restrictions never apply and a worker's crash cannot corrupt the supervisor.

This module is the supervisor's life (start, watch, stop) and its two-phase reload; one
worker process is ``_worker_process``'s, when to restart one ``_restart``'s, the ports
``_server_ports``'s, and reading control commands ``_commands``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard._redact import mask_credentials
from shipyard.errors import MissingDependencyError, ServiceError, ShipyardError
from shipyard.serving._commands import BadCommand, left, reload_request, serve_control
from shipyard.serving._restart import RestartPolicy
from shipyard.serving._server_ports import DRAIN_S, ServerPorts
from shipyard.serving._worker_process import WorkerProcess
from shipyard.serving.auth import check_exposure
from shipyard.serving.config import ModelSpec, ServerConfig
from shipyard.serving.control import CONTROL_SOCKET_NAME, worker_env

__all__ = ["Supervisor", "check_serve_extra", "run_supervisor"]


class Supervisor:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.specs: list[ModelSpec] = config.all_models()
        # Read once: a worker restarted later requires the token the server started with.
        self.auth_token = config.resolved_auth_token()
        check_exposure(config.host, self.auth_token is not None, config.insecure)
        self.workers = [WorkerProcess(i) for i in range(config.workers)]
        self._ids = itertools.count(1)
        self._stopping = False
        self._reload_lock = asyncio.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config.run_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-serve-")
            self.run_dir = Path(self._tmp.name)
        else:
            self.run_dir = Path(config.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.control_path = Path(config.control_socket or self.run_dir / CONTROL_SOCKET_NAME)
        self.metrics_dir = self.run_dir / "metrics"
        # One listening socket per worker and port, bound here or handed over by the
        # server this one replaces.
        self.ports = ServerPorts(config, config.workers)
        self._reloading: dict[str, Any] | None = None
        #: Why the server is broken for good (a worker that cannot be restarted), or None.
        self.error: str | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: Fingerprint (``serving.fingerprint``) of each served URI when it was loaded.
        self._fingerprints: dict[str, str] = {}

    @property
    def http_port(self) -> int:
        return self.ports.http_port

    @property
    def grpc_port(self) -> int | None:
        return self.ports.grpc_port

    # -- start-up --------------------------------------------------------------------

    def _settle_listeners(self) -> None:
        """After a takeover, once every worker is ready: close the surplus sockets later."""
        if self.ports.settle():
            task = asyncio.create_task(self._close_drained_later())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _close_drained_later(self) -> None:
        await asyncio.sleep(DRAIN_S)
        async with self._reload_lock:  # not half-way through a worker's restart
            if self._stopping or not self.ports.may_close_drained():
                return
            self.ports.close_drained()
            live = [w for w in self.workers if w.running]
            await asyncio.gather(
                *(w.request({"op": "close_drained"}, next(self._ids), 10) for w in live)
            )

    def _worker_config(self) -> str:
        cfg = self.config.model_copy(
            update={
                "models": self.specs,
                "model_repository": None,
                "http_port": self.http_port,
                "grpc_port": self.grpc_port,
                "grpc_enabled": self.grpc_port is not None,
                # The token travels in the worker's environment (``worker_env``) instead.
                "auth_token_file": None,
                "auth_token": None,
            }
        )
        return cfg.model_dump_json()

    async def _spawn(self, worker: WorkerProcess) -> None:
        http_fds, grpc_fds = self.ports.fds_for(worker.index)
        config = self._worker_config()

        def env(channel: int) -> dict[str, str]:
            return worker_env(
                config, channel, self.metrics_dir, http_fds, grpc_fds, self.auth_token
            )

        await worker.spawn(env, [*http_fds, *grpc_fds])

    async def start(self) -> None:
        """Start every worker and wait until all are ready; raise if one cannot start."""
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        # Numbers of an earlier run in the same run dir must not add to this one's.
        for stale in self.metrics_dir.glob("worker-*"):
            stale.unlink(missing_ok=True)
        self.ports.bind()
        from shipyard.serving.fingerprint import model_fingerprint

        self._fingerprints = {spec.uri: model_fingerprint(spec.uri) for spec in self.specs}
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        self._control = await asyncio.start_unix_server(self._serve_control, str(self.control_path))
        os.chmod(self.control_path, 0o600)
        await asyncio.gather(*(self._spawn(w) for w in self.workers))
        await asyncio.gather(*(w.ready_event.wait() for w in self.workers))
        broken = [w for w in self.workers if not w.ready]
        if broken:
            reason = broken[0].failed or f"worker exited with code {await broken[0].proc.wait()}"  # type: ignore[union-attr]
            await self.stop()
            raise ServiceError(f"The model server could not start: {reason}")
        self._settle_listeners()

    # -- running ---------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        self._announce()
        watchers = [asyncio.create_task(self._watch(w)) for w in self.workers]
        await stop.wait()
        for task in watchers:
            task.cancel()
        await self.stop()
        return 0

    def _announce(self) -> None:
        for model in self.workers[0].models:
            uri = str(model.get("uri"))
            sys.stderr.write(
                f"shipyard: serving model '{model.get('name')}' from {mask_credentials(uri)} "
                f"(fingerprint {self._fingerprints.get(uri, '')[:12] or '-'})\n"
            )
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        names = ", ".join(m["name"] for m in self.workers[0].models)
        lines = [
            f"Shipyard model server ready ({len(self.workers)} "
            f"worker{'' if len(self.workers) == 1 else 's'}, models: {names})",
            f"  HTTP:    http://{shown}:{self.http_port}",
        ]
        if self.grpc_port is not None:
            lines.append(f"  gRPC:    {shown}:{self.grpc_port}")
        lines.append(f"  control: {self.control_path}")
        if self.auth_token is not None:
            where = self.config.auth_token_file or "SHIPYARD_SERVER_AUTH_TOKEN"
            lines.append(f"  auth:    bearer token required (from {where})")
        print("\n".join(lines), flush=True)

    async def _watch(self, worker: WorkerProcess) -> None:
        policy = RestartPolicy()
        while not self._stopping:
            proc = worker.proc
            if proc is None:
                return
            code = await proc.wait()
            if self._stopping:
                return
            delay = policy.delay(time.monotonic() - worker.started_at)
            if policy.exhausted:
                cause = worker.failed or f"the worker exited with code {code}"
                self.ports.retire(worker.index)
                await self._give_up(
                    f"a worker could not be restarted ({policy.failed_starts} attempts): {cause}"
                )
                return
            sys.stderr.write(
                f"shipyard: worker {proc.pid} exited with code {code}; starting a new one\n"
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            # Under the reload lock: a reload never runs half-way through a restart, so
            # the new worker starts with the models every other worker serves (the last
            # known-good specs: a reload changes them only once every worker committed).
            async with self._reload_lock:
                await self._spawn(worker)
                await worker.ready_event.wait()
            if not worker.ready and worker.failed:
                sys.stderr.write(f"shipyard: the new worker could not start: {worker.failed}\n")
            policy.started(worker.ready)

    async def _give_up(self, error: str) -> None:
        """Record ``error`` as the server's state and make every live worker's readiness
        say it (they keep answering requests: a degraded server beats none)."""
        self.error = error
        sys.stderr.write(f"shipyard: {error}; not restarting it again\n")
        live = [w for w in self.workers if w.running]
        await asyncio.gather(
            *(w.request({"op": "not_ready", "error": error}, next(self._ids), 10) for w in live)
        )

    async def stop(self) -> None:
        """Drain and stop every worker (SIGTERM, then SIGKILL after the grace period)."""
        self._stopping = True
        # Our copies of the listening sockets first: once the workers close theirs, new
        # connections are refused instead of queueing where nobody accepts them.
        self.ports.close()
        procs = [w.proc for w in self.workers if w.proc and w.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = self.config.graceful_timeout + 5
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), deadline)
        except TimeoutError:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await asyncio.gather(*(p.wait() for p in procs))
        control = getattr(self, "_control", None)
        if control is not None:
            control.close()
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- control socket --------------------------------------------------------------

    async def _serve_control(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await serve_control(reader, writer, self._command, self.ports.hand_over)

    async def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        if op == "status":
            return self.status()
        if op == "reload":
            try:
                served = {m["name"] for w in self.workers for m in w.models}
                asked = reload_request(command, served)
            except BadCommand as err:
                return {"ok": False, "error": str(err)}
            return await self.reload(asked.uri, asked.name, asked.deadline, asked.trust)
        return {"ok": False, "error": f"unknown op {op!r}; use 'status' or 'reload'"}

    def status(self) -> dict[str, Any]:
        workers = [{"pid": w.pid, "ready": w.ready, "models": w.models} for w in self.workers]
        return {
            "ok": True,
            "pid": os.getpid(),
            "ready": self.error is None and all(w.ready for w in self.workers),
            "error": self.error,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "workers": workers,
            "models": [
                {**m, "fingerprint": self._fingerprints.get(str(m.get("uri")), "")}
                for m in (self.workers[0].models if self.workers else [])
            ],
            # The reload under way (model_uri, name, deadline), so that a caller who lost
            # track of it knows it is not over yet; None when none is.
            "reload": self._reloading,
        }

    async def reload(
        self, uri: str, name: str, deadline: float, trust: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Two-phase hot reload across every worker (see ``control``), abandoned (the old
        model keeps serving) when ``deadline`` (epoch seconds) passes first or the caller
        cancels it."""
        from shipyard.serving.fingerprint import model_fingerprint

        async with self._reload_lock:
            workers = [w for w in self.workers if w.ready]
            before = {(m.get("uri"), m.get("name")) for w in workers for m in w.models}
            prepare_id = next(self._ids)
            fingerprint = model_fingerprint(uri)
            self._reloading = {"model_uri": uri, "name": name, "deadline": deadline}
            committed = False
            try:
                command = {"op": "prepare", "model_uri": uri, "name": name, "trust": trust}
                answers = await asyncio.gather(
                    *(w.request(command, prepare_id, left(deadline)) for w in workers)
                )
                failed = [a for a in answers if not a.get("ok")]
                if left(deadline) <= 0:
                    return {
                        "ok": False,
                        # The caller says what serves now (send_reload: the previous model).
                        "error": "the deadline passed before every worker had loaded the new model",
                    }
                if failed or not workers:
                    error = failed[0].get("error") if failed else "no worker is ready"
                    return {"ok": False, "error": str(error)}
                # Past this point the reload completes even if the caller cancels it: a
                # half-committed reload (some workers switched) is worse than a late one.
                committed = True
                commit = asyncio.create_task(
                    self._commit(
                        workers, prepare_id, ModelSpec(uri=uri, name=name, **(trust or {})), before
                    )
                )
                old = self._served_as(name, before)
                self._fingerprints[uri] = fingerprint
                answer = await asyncio.shield(commit)
                # The service log says what served before and what serves now.
                sys.stderr.write(
                    f"shipyard: swapped model '{name}': {old} -> {mask_credentials(uri)} "
                    f"(fingerprint {fingerprint[:12] or '-'})\n"
                )
                return answer
            finally:
                if not committed:
                    # Runs on failure, timeout and cancellation alike. A worker answers
                    # its channel in order, so this abort reaches it after the prepare
                    # (still loading, maybe) and drops what that prepare loads.
                    for w in workers:
                        abort = {"op": "abort", "prepare_id": prepare_id}
                        task = asyncio.create_task(w.request(abort, next(self._ids), 3600))
                        self._background.add(task)
                        task.add_done_callback(self._background.discard)
                self._reloading = None

    def _served_as(self, name: str, before: set[tuple[Any, Any]]) -> str:
        """'URI (fingerprint F)' of what served ``name`` before a swap."""
        uris = sorted(str(u) for u, n in before if n == name) or ["nothing"]
        return ", ".join(
            f"{mask_credentials(u)} (fingerprint {self._fingerprints.get(u, '')[:12] or '-'})"
            for u in uris
        )

    async def _commit(
        self,
        workers: list[WorkerProcess],
        prepare_id: int,
        spec: ModelSpec,
        before: set[tuple[Any, Any]],
    ) -> dict[str, Any]:
        name = spec.name
        for w in workers:
            answer = await w.request(
                {"op": "commit", "prepare_id": prepare_id}, next(self._ids), 30
            )
            if answer.get("ok"):
                w.models = answer.get("models", w.models)
        # Workers started from now on load the new model too.
        # (A spec without a name is served under the model's own name.)
        self.specs = [
            s
            for s in self.specs
            if s.name != name and not (s.name is None and (s.uri, name) in before)
        ]
        # With its trust options: a restarted worker loads it as the reload did.
        self.specs.append(spec)
        return {"ok": True, "models": self.status()["models"]}


#: What every worker imports to serve; checked in the parent, so a core install (no
#: ``shipyard[serve]``) gets one line of advice instead of a traceback per worker.
_SERVE_MODULES = ("orjson", "uvicorn", "httptools")


def check_serve_extra() -> None:
    """Raise ``MissingDependencyError`` if a package the workers need is not installed."""
    import importlib.util

    for module in _SERVE_MODULES:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(module, "serve", "the model server")


def run_supervisor(config: ServerConfig) -> int:
    """Run the server in the foreground until SIGTERM/SIGINT; returns the exit code."""
    try:
        check_serve_extra()
        return asyncio.run(Supervisor(config).run())
    except ShipyardError as err:
        sys.stderr.write(f"Error: {err}\n")
        return 1
