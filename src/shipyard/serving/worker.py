"""One worker process: load the models, serve HTTP (and gRPC) on the shared ports, obey
the supervisor's channel, drain on SIGTERM/SIGINT.

Started by the supervisor as ``python -m shipyard.serving.worker`` with the server config
(JSON) and the channel socket's file descriptor in its environment (``control.worker_env``).
It listens only once every model has loaded and passed its health check, so a new or
replacement worker never answers "not ready".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from shipyard.errors import ConfigError, ServiceError, ShipyardError
from shipyard.serving._budget import BufferBudget
from shipyard.serving._heap import freeze_startup_heap
from shipyard.serving.auth import AuthApp, BearerAuth
from shipyard.serving.codecs._numbers import load_number_parser
from shipyard.serving.config import ServerConfig
from shipyard.serving.control import (
    WORKER_AUTH_TOKEN_ENV,
    WORKER_CHANNEL_ENV,
    WORKER_CONFIG_ENV,
    WORKER_GRPC_FD_ENV,
    WORKER_HTTP_FD_ENV,
    WORKER_METRICS_ENV,
)
from shipyard.serving.dataplane import DataPlane, ReloadHandle
from shipyard.serving.http._direct import Direct
from shipyard.serving.http._direct import enabled as direct_enabled
from shipyard.serving.http.app import HttpApp
from shipyard.serving.http.protocol import HttpLimits, protocol_class
from shipyard.serving.metrics import Metrics

__all__ = ["run_worker"]

log = logging.getLogger("shipyard.serving")


def _inherited_sockets(env: str) -> list[socket.socket]:
    """The listening sockets the supervisor gave this worker (see ``_ports``): its own,
    then the surplus of a handover it drains (see ``_listeners``)."""
    sockets = []
    for fd in filter(None, os.environ.get(env, "").split(",")):
        sock = socket.socket(fileno=int(fd))
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def _bind_alone(host: str, port: int) -> socket.socket:
    # A worker started without a supervisor (no inherited socket): a port of its own.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the worker decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Worker:
    def __init__(self, config: ServerConfig, channel_fd: int | None, metrics_dir: Path | None):
        self.config = config
        self.metrics = Metrics(metrics_dir)
        self.dataplane = DataPlane(self.metrics, expose_errors=config.expose_errors)
        if channel_fd is not None:
            # Not ready until the supervisor has our "ready" event: a deployer that saw
            # 200 must never find a worker the supervisor still counts as starting (its
            # death would then fail the whole server's start-up instead of a restart).
            self.dataplane.not_ready_reason = "starting"
        self._channel_fd = channel_fd
        #: Request bytes held over all connections, both transports (``_budget``).
        self.budget = BufferBudget(config.buffered_bytes_cap())
        # Taken out of the environment: a predictor's subprocesses need not inherit it.
        token = os.environ.pop(WORKER_AUTH_TOKEN_ENV, None) or config.resolved_auth_token()
        self.auth = BearerAuth(token, config.open_paths) if token else None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, ReloadHandle] = {}
        self._http: _Server | None = None
        self._grpc: Any = None
        self._stopping = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.write(orjson.dumps(message) + b"\n")
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def load(self) -> None:
        for spec in self.config.all_models():
            entry = await asyncio.to_thread(
                self.dataplane.load_model,
                spec,
                self.config.batching_for(spec),
                self.config.admission_for(spec),
            )
            if entry.name in self.dataplane.registry:
                raise ConfigError(
                    f"Two models would be served as {entry.name!r} (the second from "
                    f"{spec.uri}); give them distinct names (--name, or folder names in the "
                    "model repository)."
                )
            await self.dataplane.check(entry)
            self.dataplane.add(entry)

    async def run(self) -> int:
        """Start up (one step per method), serve until told to stop, drain; the exit code.

        Start-up fails as a whole: a worker that cannot load its models, bind its HTTP
        port or start its gRPC listener tells the supervisor why and exits with 3, so
        the server never announces what a worker does not serve.
        """
        self._handle_signals()
        channel_task = await self._open_channel()
        try:
            await self.load()
            socks = self._bind_http()
            http_task = await self._start_http(socks)
            if http_task is None:
                return 4
            try:
                await self._start_grpc()
            except ShipyardError:
                await self._stop_http(http_task)
                raise
            freeze_startup_heap()
        except ShipyardError as err:
            await self._fail(str(err))
            return 3
        await self._serve_until_stopped(http_task)
        if channel_task is not None:
            channel_task.cancel()
        return 0

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)

    async def _open_channel(self) -> asyncio.Task[None] | None:
        """Connect the supervisor's channel (when started by one) and start obeying it."""
        if self._channel_fd is None:
            return None
        reader, self._writer = await asyncio.open_unix_connection(
            sock=socket.socket(fileno=self._channel_fd)
        )
        return asyncio.create_task(self._serve_channel(reader))

    async def _fail(self, message: str) -> None:
        await self.send({"event": "failed", "error": message})
        if self._channel_fd is None:
            # Alone, nobody else reports it. Under a supervisor it says it once for all
            # workers (N workers failing the same way printed it N + 1 times).
            sys.stderr.write(f"shipyard worker {os.getpid()}: {message}\n")

    def _bind_http(self) -> list[socket.socket]:
        try:
            return _inherited_sockets(WORKER_HTTP_FD_ENV) or [
                _bind_alone(self.config.host, self.config.http_port)
            ]
        except OSError as err:
            raise ServiceError(
                f"cannot listen on {self.config.host}:{self.config.http_port}: {err}"
            ) from err

    async def _start_http(self, socks: list[socket.socket]) -> asyncio.Task[None] | None:
        """Serve HTTP on ``socks``; the task, or None if uvicorn stopped while starting."""
        # Compiled once per machine (cached); None without a compiler: orjson alone.
        numbers = load_number_parser()
        http_app = HttpApp(
            self.dataplane, self.metrics, self.config.max_body_size, self.budget, numbers
        )
        app: Any = http_app
        if self.auth is not None:
            app = AuthApp(app, self.auth)  # wrapped only when on: no cost otherwise
        cfg = self.config
        if cfg.access_log:
            from shipyard.serving.http._access import AccessLog

            app = AccessLog(app)
        limits = HttpLimits(
            header_timeout=cfg.header_timeout,
            body_timeout=cfg.body_timeout,
            idle_timeout=cfg.idle_timeout,
            max_connections=cfg.max_connections,
        )
        # POST requests (inference) skip the ASGI cycle, under the same rules (``_direct``).
        direct = Direct(http_app, self.auth, cfg.access_log) if direct_enabled() else None
        uv_config = uvicorn.Config(
            app,
            loop="none",
            http=protocol_class(limits, direct),
            lifespan="off",
            access_log=False,
            server_header=False,
            proxy_headers=False,  # no proxy in front by default; saves a middleware per request
            log_level="warning",
            timeout_graceful_shutdown=int(self.config.graceful_timeout),
            timeout_keep_alive=max(1, int(cfg.idle_timeout)),
        )
        self._http = _Server(uv_config)
        http_task = asyncio.create_task(self._http.serve(sockets=socks))
        while not self._http.started and not http_task.done():
            await asyncio.sleep(0.01)
        if http_task.done():
            http_task.result()
            return None
        return http_task

    async def _stop_http(self, http_task: asyncio.Task[None]) -> None:
        if self._http is not None:
            self._http.should_exit = True
        await http_task

    async def _serve_until_stopped(self, http_task: asyncio.Task[None]) -> None:
        """Announce readiness, serve until SIGTERM/SIGINT (or HTTP ends), then drain:
        stop accepting, let in-flight requests finish, then leave."""
        flusher = asyncio.create_task(self._flush_metrics())
        self.metrics.flush()
        await self.send({"event": "ready", "pid": os.getpid(), "models": self._models()})
        if self.dataplane.not_ready_reason == "starting":
            self.dataplane.not_ready_reason = None
        stop_task = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if self._http is not None:
            self._http.should_exit = True  # HTTP stops accepting while gRPC drains
        if self._grpc is not None:
            await self._grpc.stop(self.config.graceful_timeout)
        await self._stop_http(http_task)
        flusher.cancel()
        self.metrics.flush()

    async def _start_grpc(self) -> None:
        """Start the gRPC listener when the config asks for one; any failure is the
        worker's start-up failure, with its cause (the supervisor announced the port)."""
        port = self.config.grpc_port
        if not self.config.grpc_enabled or port is None:
            return
        try:
            from shipyard.serving.grpc import start_grpc_server
            from shipyard.serving.grpc._http2 import Http2Limits

            inherited = _inherited_sockets(WORKER_GRPC_FD_ENV)
            self._grpc = await start_grpc_server(
                self.dataplane,
                self.config.host,
                port,
                sock=inherited[0] if inherited else None,
                draining=inherited[1:],
                limits=Http2Limits(
                    preface_timeout=self.config.header_timeout,
                    idle_timeout=self.config.idle_timeout,
                ),
                max_connections=self.config.max_connections,
                # One limit for both transports: --max-body-size is the operator's promise.
                max_message_bytes=self.config.max_body_size,
                budget=self.budget,
                auth=self.auth,
            )
        except ShipyardError:
            raise
        except ImportError as err:
            raise ServiceError(
                f"the gRPC listener cannot start: {err} (install shipyard[serve], or "
                "serve without gRPC: --no-grpc)"
            ) from err
        except Exception as err:
            log.exception("the gRPC listener failed to start")
            raise ServiceError(
                f"the gRPC listener failed to start: {type(err).__name__}: {err} "
                "(serve without gRPC: --no-grpc)"
            ) from err

    def _close_drained(self) -> None:
        """Stop accepting on the surplus sockets of a handover (see ``_listeners``): the
        supervisor steered new connections away from them a while ago."""
        if self._http is not None:
            for server in self._http.servers[1:]:
                server.close()  # closes the socket too
        if self._grpc is not None:
            self._grpc.close_drained()

    def _models(self) -> list[dict[str, Any]]:
        return [
            {"name": e.name, "version": e.version, "uri": e.uri, "ready": e.ready}
            for e in self.dataplane.registry.entries()
        ]

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self.metrics.dirty:
                await self.metrics.flush_in_thread()

    async def _serve_channel(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                # The supervisor is gone: nobody will replace or stop us; stop cleanly.
                self._stopping.set()
                return
            try:
                command = orjson.loads(line)
                reply = await self._handle(command)
            except Exception as err:
                reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
                command = {}
            reply["id"] = command.get("id") if isinstance(command, dict) else None
            await self.send(reply)

    async def _handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        cid = int(command.get("id", 0))
        if op == "prepare":
            try:
                handle = await self.dataplane.prepare_reload(
                    command["model_uri"], command["name"], trust=command.get("trust")
                )
            except ShipyardError as err:
                return {"ok": False, "error": str(err)}
            self._pending[cid] = handle
            return {"ok": True}
        if op == "commit":
            handle = self._pending.pop(int(command["prepare_id"]))
            self.dataplane.commit_reload(handle)
            return {"ok": True, "models": self._models()}
        if op == "abort":
            self._pending.pop(int(command["prepare_id"]), None)
            return {"ok": True}
        if op == "not_ready":
            # The supervisor gave up on a worker of this server: readiness says so.
            self.dataplane.not_ready_reason = str(command.get("error") or "not ready")
            return {"ok": True}
        if op == "status":
            return {"ok": True, "pid": os.getpid(), "models": self._models()}
        if op == "close_drained":
            self._close_drained()
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}


def run_worker(config: ServerConfig, channel_fd: int | None, metrics_dir: Path | None) -> int:
    """Run one worker until it is told to stop; returns the exit code."""
    logging.basicConfig(
        level=config.log_level.upper(), format="%(levelname)s [worker %(process)d] %(message)s"
    )
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is in the serve extra
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(Worker(config, channel_fd, metrics_dir).run())


def main() -> None:
    config = ServerConfig.model_validate_json(os.environ[WORKER_CONFIG_ENV])
    fd = os.environ.get(WORKER_CHANNEL_ENV)
    metrics_dir = os.environ.get(WORKER_METRICS_ENV)
    sys.exit(
        run_worker(config, int(fd) if fd else None, Path(metrics_dir) if metrics_dir else None)
    )


if __name__ == "__main__":
    main()
