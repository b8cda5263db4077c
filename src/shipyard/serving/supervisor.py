"""The supervisor: reserves the ports, runs N worker processes, replaces the ones that die,
drains them on SIGTERM/SIGINT, and answers the control socket (see ``control``).

It imports no numpy, no web framework and no grpc: workers are fresh interpreters
(``python -m shipyard.serving.worker``), never forks of this process, so grpc's fork
restrictions never apply and a worker's crash cannot corrupt the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard._redact import mask_credentials
from shipyard.errors import MissingDependencyError, ServiceError, ShipyardError
from shipyard.serving._listeners import PortListeners
from shipyard.serving.auth import check_exposure
from shipyard.serving.config import ModelSpec, ServerConfig, check_model_name
from shipyard.serving.control import (
    CONTROL_SOCKET_NAME,
    TAKEOVER_SOCKET_ENV,
    WORKER_MODULE,
    worker_env,
)

__all__ = ["Supervisor", "check_serve_extra", "run_supervisor"]

_RESTART_BACKOFF_MAX = 5.0
#: Consecutive failed starts of a worker after which the supervisor stops restarting it.
_MAX_FAILED_STARTS = 5
#: How long the workers keep accepting on the surplus sockets of a handover after new
#: connections were steered away from them, before those are closed: long enough for
#: any handshake the kernel had begun to finish and be accepted.
_DRAIN_S = 10.0


class _WorkerProc:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.ready = False
        self.failed: str | None = None
        self.models: list[dict[str, Any]] = []
        self.started_at = 0.0
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ready_event = asyncio.Event()
        self.reader_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def request(self, command: dict[str, Any], cid: int, timeout: float) -> dict[str, Any]:
        if self.writer is None or self.proc is None or self.proc.returncode is not None:
            return {"ok": False, "error": f"worker {self.pid} is not running"}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[cid] = future
        self.writer.write(json.dumps({**command, "id": cid}).encode() + b"\n")
        try:
            await self.writer.drain()
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, ConnectionError) as err:
            return {"ok": False, "error": f"worker {self.pid}: no answer ({type(err).__name__})"}
        finally:
            self.replies.pop(cid, None)


class Supervisor:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.specs: list[ModelSpec] = config.all_models()
        # Read once: a worker restarted later requires the token the server started with.
        self.auth_token = config.resolved_auth_token()
        check_exposure(config.host, self.auth_token is not None, config.insecure)
        self.workers = [_WorkerProc(i) for i in range(config.workers)]
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
        self.http_port = 0
        self.grpc_port: int | None = None
        # One listening socket per worker and port, bound here or handed over by the
        # server this one replaces (see ``_ports``, ``_handover``).
        self._http: PortListeners | None = None
        self._grpc: PortListeners | None = None
        self._took_over = False
        #: Set once a successor was handed our sockets: it counts on our workers to
        #: accept on all of them until we stop, the surplus we drain included.
        self._handed_over = False
        self._reloading: dict[str, Any] | None = None
        #: Why the server is broken for good (a worker that cannot be restarted), or None.
        self.error: str | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: Fingerprint (``serving.fingerprint``) of each served URI when it was loaded.
        self._fingerprints: dict[str, str] = {}

    # -- start-up --------------------------------------------------------------------

    def _resolve_ports(self) -> None:
        from shipyard.serving._ports import PortInUseError

        try:
            self._bind_ports()
        except OSError as err:
            self._close_listeners()
            if isinstance(err, PortInUseError):
                raise ServiceError(
                    f"Cannot start: {err.strerror}. Stop it, or pick another port with "
                    "--http-port/--grpc-port (0 for any free one)."
                ) from err
            raise ServiceError(
                f"Cannot bind {self.config.host} (HTTP port {self.config.http_port}, gRPC port "
                f"{self.config.grpc_port or 'HTTP+1'}): {err}. Pick another with "
                "--http-port/--grpc-port, or 0 for any free one."
            ) from err

    def _bind_ports(self) -> None:
        cfg = self.config
        count = len(self.workers)
        inherited = self._take_over()
        self._http = PortListeners.bind(cfg.host, cfg.http_port, count, inherited.get("http", []))
        self.http_port = self._http.port
        if cfg.grpc_enabled and _grpc_available():
            wanted = cfg.grpc_port
            if wanted is None:
                wanted = self.http_port + 1 if cfg.http_port != 0 else 0
            self._grpc = PortListeners.bind(cfg.host, wanted, count, inherited.get("grpc", []))
            self.grpc_port = self._grpc.port

    def _take_over(self) -> dict[str, list[socket.socket]]:
        """The listening sockets of the server this one replaces (``TAKEOVER_SOCKET_ENV``),
        those on the host and ports this one serves; none when it is not a replacement,
        or the old server is gone (then the ports are bound anew)."""
        from shipyard.serving._handover import receive_listeners

        path = os.environ.get(TAKEOVER_SOCKET_ENV)
        if not path:
            return {}
        try:
            ports = receive_listeners(path)
        except OSError as err:
            sys.stderr.write(f"shipyard: no handover from {path} ({err}); binding the ports\n")
            return {}
        cfg = self.config
        wanted = {"http": cfg.http_port, "grpc": cfg.grpc_port}
        if wanted["grpc"] is None and cfg.http_port:
            wanted["grpc"] = cfg.http_port + 1
        kept: dict[str, list[socket.socket]] = {}
        for name, socks in ports.items():
            for sock in socks:
                if _serves(sock, cfg.host, wanted.get(name)):
                    kept.setdefault(name, []).append(sock)
                else:
                    sock.close()  # our copy only: the old server keeps serving it
        self._took_over = bool(kept)
        return kept

    def _listeners(self) -> list[PortListeners]:
        return [p for p in (self._http, self._grpc) if p is not None]

    def _close_listeners(self) -> None:
        for ports in self._listeners():
            ports.close()

    def _retire_listeners(self, worker: _WorkerProc) -> None:
        """Close our copies of a worker's listening sockets once nobody will accept on
        them again: the kernel then stops routing new connections to them (with
        SO_REUSEPORT it would keep queueing a share of them where nobody answers)."""
        for ports in self._listeners():
            ports.retire(worker.index)

    def _settle_listeners(self) -> None:
        """Once every worker is ready after a handover: spread new connections over the
        workers' own sockets only, and close the surplus after ``_DRAIN_S``."""
        if not self._took_over:
            return
        count = len(self.workers)
        steered = all(ports.steer(count) for ports in self._listeners())
        draining = any(ports.draining for ports in self._listeners())
        if not draining:
            return
        if not steered:
            for ports in self._listeners():
                ports.may_close_drained = False
            sys.stderr.write("shipyard: cannot steer connections; serving the surplus sockets\n")
            return
        task = asyncio.create_task(self._close_drained_later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close_drained_later(self) -> None:
        await asyncio.sleep(_DRAIN_S)
        async with self._reload_lock:  # not half-way through a worker's restart
            if self._stopping or self._handed_over:
                return
            if not all(p.may_close_drained for p in self._listeners()):
                return
            for ports in self._listeners():
                ports.close_drained()
            live = [w for w in self.workers if w.proc is not None and w.proc.returncode is None]
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

    async def _spawn(self, worker: _WorkerProc) -> None:
        ours, theirs = socket.socketpair()
        if self._http is None:
            raise ServiceError("the supervisor has not bound its ports")
        http_fds = self._http.fds_for(worker.index)
        grpc_fds = self._grpc.fds_for(worker.index) if self._grpc is not None else []
        env = worker_env(
            self._worker_config(),
            theirs.fileno(),
            self.metrics_dir,
            http_fds,
            grpc_fds,
            self.auth_token,
        )
        fds = [theirs.fileno(), *http_fds, *grpc_fds]
        worker.ready = False
        worker.failed = None
        worker.ready_event = asyncio.Event()
        worker.started_at = time.monotonic()
        worker.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", WORKER_MODULE, env=env, pass_fds=fds
        )
        theirs.close()
        reader, worker.writer = await asyncio.open_unix_connection(sock=ours)
        worker.reader_task = asyncio.create_task(self._read_worker(worker, reader))

    async def _read_worker(self, worker: _WorkerProc, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                worker.ready_event.set()
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            event = message.get("event")
            if event == "ready":
                worker.ready = True
                worker.models = message.get("models", [])
                worker.ready_event.set()
            elif event == "failed":
                worker.failed = str(message.get("error"))
                worker.ready_event.set()
            elif "id" in message:
                future = worker.replies.get(message["id"])
                if future is not None and not future.done():
                    future.set_result(message)

    async def start(self) -> None:
        """Start every worker and wait until all are ready; raise if one cannot start."""
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        # Numbers of an earlier run in the same run dir must not add to this one's.
        for stale in self.metrics_dir.glob("worker-*"):
            stale.unlink(missing_ok=True)
        self._resolve_ports()
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

    async def _watch(self, worker: _WorkerProc) -> None:
        backoff = 0.1
        failed_starts = 0
        while not self._stopping:
            proc = worker.proc
            if proc is None:
                return
            code = await proc.wait()
            if self._stopping:
                return
            lived = time.monotonic() - worker.started_at
            backoff = 0.1 if lived > 10 else min(backoff * 2, _RESTART_BACKOFF_MAX)
            if failed_starts >= _MAX_FAILED_STARTS:
                # Restarting again would only fail again (the model cannot be loaded any
                # more, say): stop, and say so everywhere, instead of looping forever.
                cause = worker.failed or f"the worker exited with code {code}"
                self._retire_listeners(worker)
                await self._give_up(
                    f"a worker could not be restarted ({failed_starts} attempts): {cause}"
                )
                return
            sys.stderr.write(
                f"shipyard: worker {proc.pid} exited with code {code}; starting a new one\n"
            )
            await asyncio.sleep(backoff if lived < 10 else 0)
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
            failed_starts = 0 if worker.ready else failed_starts + 1

    async def _give_up(self, error: str) -> None:
        """Record ``error`` as the server's state and make every live worker's readiness
        say it (they keep answering requests: a degraded server beats none)."""
        self.error = error
        sys.stderr.write(f"shipyard: {error}; not restarting it again\n")
        live = [w for w in self.workers if w.proc is not None and w.proc.returncode is None]
        await asyncio.gather(
            *(w.request({"op": "not_ready", "error": error}, next(self._ids), 10) for w in live)
        )

    async def stop(self) -> None:
        """Drain and stop every worker (SIGTERM, then SIGKILL after the grace period)."""
        self._stopping = True
        # Our copies of the listening sockets first: once the workers close theirs, new
        # connections are refused instead of queueing where nobody accepts them.
        self._close_listeners()
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
        try:
            while line := await reader.readline():
                try:
                    command = json.loads(line)
                    if not isinstance(command, dict):
                        raise ValueError("a command is a JSON object")
                    if command.get("op") == "handover":
                        await self._hand_over(writer)
                        continue
                    answer = await self._command_unless_abandoned(command, reader)
                except ValueError as err:
                    answer = {"ok": False, "error": f"unreadable command: {err}"}
                if answer is None:
                    return  # the caller hung up: nobody to answer
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _hand_over(self, writer: asyncio.StreamWriter) -> None:
        """Send our listening sockets to the server replacing us (``_handover``): it
        accepts on them beside our workers until we stop, then alone."""
        from shipyard.serving._handover import send_listeners

        await writer.drain()
        for _ in range(100):  # the answer before this one must have left first
            if writer.transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.01)
        raw = writer.get_extra_info("socket")
        self._handed_over = True
        ports = {"http": self._http.handover() if self._http else []}
        if self._grpc is not None:
            ports["grpc"] = self._grpc.handover()
        with socket.socket(fileno=os.dup(raw.fileno())) as connection:
            connection.settimeout(5.0)
            await asyncio.to_thread(send_listeners, connection, ports)

    async def _command_unless_abandoned(
        self, command: dict[str, Any], reader: asyncio.StreamReader
    ) -> dict[str, Any] | None:
        """Run ``command``; if the caller hangs up first (a killed CLI), cancel it: a
        reload nobody waits for must not change what is served behind the registry's back.
        Returns None when the caller is gone."""
        if command.get("op") != "reload":
            return await self._command(command)
        task = asyncio.create_task(self._command(command))
        hangup = asyncio.create_task(reader.read(1))
        done, _ = await asyncio.wait({task, hangup}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            hangup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hangup
            return task.result()
        # A byte or EOF while a reload runs: the protocol sends one command at a time, so
        # either way the caller is not waiting for this answer the normal way.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        if op == "status":
            return self.status()
        if op == "reload":
            uri = command.get("model_uri")
            if not isinstance(uri, str) or not uri.strip():
                return {"ok": False, "error": 'reload needs "model_uri"'}
            name = command.get("name")
            if name is None:
                served = {m["name"] for w in self.workers for m in w.models}
                if len(served) != 1:
                    return {"ok": False, "error": f'reload needs "name"; served: {sorted(served)}'}
                name = served.pop()
            try:
                # Refused here, before anything is loaded: a name no worker could be
                # started with would otherwise poison every replacement worker.
                check_model_name(str(name))
            except ValueError as err:
                return {"ok": False, "error": f"reload refused: {err}"}
            try:
                deadline = _deadline_of(command)
            except ValueError as err:
                return {"ok": False, "error": f"reload refused: {err}"}
            try:
                trust = _trust_of(command)
            except ValueError as err:
                return {"ok": False, "error": f"reload refused: {err}"}
            return await self.reload(uri, str(name), deadline, trust)
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
                    *(w.request(command, prepare_id, _left(deadline)) for w in workers)
                )
                failed = [a for a in answers if not a.get("ok")]
                if _left(deadline) <= 0:
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
        workers: list[_WorkerProc],
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


def _serves(sock: socket.socket, host: str, port: int | None) -> bool:
    """Whether ``sock`` listens on ``host:port`` (a named port: 0 means a new one)."""
    if not port:
        return False
    try:
        wanted = socket.getaddrinfo(host.strip("[]"), port, sock.family, socket.SOCK_STREAM)
    except OSError:
        return False
    return any(tuple(sock.getsockname()[:2]) == tuple(w[4][:2]) for w in wanted)


def _trust_of(command: dict[str, Any]) -> dict[str, Any] | None:
    """The reload's trust options (``trusted``, ``sha256``, ``trusted_types``), checked."""
    trust = command.get("trust")
    if trust is None:
        return None
    if not isinstance(trust, dict):
        raise ValueError('"trust" must be an object')
    try:
        return ModelSpec(uri="-", **trust).load_options()
    except (TypeError, ValueError) as err:
        raise ValueError(f'bad "trust": {err}') from err


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.time())


def _deadline_of(command: dict[str, Any]) -> float:
    """The reload's deadline in epoch seconds: ``deadline`` as sent, else now + ``timeout``
    (default 300 s). Wall-clock time, because it travels between processes."""
    if command.get("deadline") is not None:
        value = command["deadline"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f'"deadline" must be epoch seconds, got {value!r}')
        return float(value)
    timeout = command.get("timeout", 300)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f'"timeout" must be a positive number of seconds, got {timeout!r}')
    return time.time() + float(timeout)


def _grpc_available() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("grpc") is not None
        and importlib.util.find_spec("shipyard.serving.grpc.listener") is not None
    )


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
