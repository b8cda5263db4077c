"""The socket keeper: owns an ``engine: mlflow`` server's port for the service's lifetime.

``python -m shipyard.deployers.mlflow._keeper MODEL_DIR --host H --port P --workers N
--control-socket S`` binds the port once and hands the listening socket to N MLflow
scoring-server workers (``_runner.py``), which all accept from the one kernel queue.

Why a keeper: MLflow's server binds its own port, so replacing it means a moment with
nobody listening (refused connections) or two sockets on one port (SO_REUSEPORT drops the
connections queued on the socket that closes). Here the socket never closes. An update
(``{"op": "reload", "model_dir": ..., "workers": N}`` on the control socket) starts N new
workers on the same socket; each loads and checks the new model before it accepts
anything. Only when all are ready do the old workers get SIGTERM: they stop accepting,
finish what they hold, and close. Connections waiting in the queue are taken by the new
workers. A model that fails leaves the old workers as they were.

The socket also outlives the keeper across an engine change: like Shipyard's supervisor,
the keeper answers ``{"op": "handover"}`` with its listening socket (``serving._handover``)
and, started with ``SHIPYARD_TAKEOVER_SOCKET``, takes over the sockets of the server it
replaces (a keeper, or Shipyard's supervisor and all its workers' sockets) on the same
host and port. The sockets are bound as Shipyard's are (``serving._ports``: SO_REUSEPORT,
nobody else on the port), so either kind of server can join them.

Stdlib and the control protocol's reader (``serving.control``) only: it starts fast and
never imports MLflow itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shipyard.serving._handover import HANDOVER_OP, receive_listeners, send_listeners
from shipyard.serving._ports import bind_listeners
from shipyard.serving.control import TAKEOVER_SOCKET_ENV, recv_line

_POLL_S = 0.2
_STOP_GRACE_S = 30.0


class Keeper:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.socks = _listeners(args.host, args.port)
        self.model_dir: str = args.model_dir
        self.workers: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready = False

    # -- workers -------------------------------------------------------------------------

    def _spawn(self, model_dir: str) -> tuple[subprocess.Popen[bytes], int]:
        read_fd, write_fd = os.pipe()
        fds = [sock.fileno() for sock in self.socks]
        command = [
            sys.executable,
            "-m",
            "shipyard.deployers.mlflow._runner",
            model_dir,
            *[arg for fd in fds for arg in ("--fd", str(fd))],
            "--ready-fd",
            str(write_fd),
            "--timeout",
            str(self.args.timeout),
        ]
        # MLflow's scoring app reads its request timeout from the environment.
        env = {**os.environ, "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": str(self.args.timeout)}
        try:
            proc = subprocess.Popen(command, pass_fds=(*fds, write_fd), env=env)
        finally:
            os.close(write_fd)
        return proc, read_fd

    def start_generation(
        self, model_dir: str, timeout: float, count: int = 0
    ) -> list[subprocess.Popen[bytes]]:
        """``count`` (default: N) workers serving ``model_dir``, all ready; on any failure
        none is left."""
        started = [self._spawn(model_dir) for _ in range(count or self.args.workers)]
        pending = {fd: proc for proc, fd in started}
        buffers: dict[int, bytes] = dict.fromkeys(pending, b"")
        error = ""
        deadline = time.monotonic() + timeout
        while pending and not error:
            left = deadline - time.monotonic()
            if left <= 0:
                error = f"the new workers were not ready within {timeout:.0f}s"
                break
            readable, _, _ = select.select(list(pending), [], [], min(left, 1.0))
            for fd in readable:
                chunk = os.read(fd, 4096)
                buffers[fd] += chunk
                text = buffers[fd].decode(errors="replace")
                if text.startswith("ready"):
                    pending.pop(fd)
                elif "\n" in text or not chunk:
                    reason = text.strip().removeprefix("error: ")
                    error = reason or f"a worker exited with code {pending[fd].wait()}"
        for _proc, fd in started:
            os.close(fd)
        procs = [proc for proc, _fd in started]
        if error:
            self._retire(procs, grace=0.0)
            raise RuntimeError(error)
        return procs

    def _retire(self, procs: list[subprocess.Popen[bytes]], grace: float) -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM if grace else signal.SIGKILL)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- control -------------------------------------------------------------------------

    def reload(self, request: dict[str, Any]) -> dict[str, Any]:
        """New workers for ``model_dir`` (their number and request timeout as asked, else
        as before), all ready, before the old ones are retired."""
        model_dir = str(request["model_dir"])
        timeout = float(request.get("timeout", 300))
        with self.lock:
            settings = (self.args.workers, self.args.timeout)
            self.args.workers = int(request.get("workers") or self.args.workers)
            self.args.timeout = int(request.get("request_timeout") or self.args.timeout)
            try:
                new = self.start_generation(model_dir, timeout)
            except RuntimeError as err:
                self.args.workers, self.args.timeout = settings
                return {"ok": False, "error": str(err)}
            old, self.workers, self.model_dir = self.workers, new, model_dir
        # Outside the lock: the old workers finish their in-flight requests meanwhile.
        threading.Thread(target=self._retire, args=(old, _STOP_GRACE_S), daemon=True).start()
        print(f"shipyard keeper: now serving {model_dir}", flush=True)
        return {"ok": True, "model_dir": model_dir}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "reload":
            return self.reload(request)
        if op == "status":
            if not self.ready:  # the first workers are still loading
                return {"ok": True, "ready": False}
            with self.lock:
                pids = [p.pid for p in self.workers if p.poll() is None]
            return {
                "ok": True,
                "ready": True,
                "model_dir": self.model_dir,
                "pids": pids,
                "workers": self.args.workers,
                "timeout": self.args.timeout,
            }
        return {"ok": False, "error": f"unknown op {op!r}"}

    def serve_control(self, server: socket.socket) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    request = json.loads(recv_line(conn) or b"{}")
                    if request.get("op") == HANDOVER_OP:
                        # The server replacing us accepts on our socket beside our
                        # workers until we stop, then alone: nothing queued is lost.
                        conn.settimeout(5.0)
                        send_listeners(conn, {"http": self.socks})
                        continue
                    answer = self.handle(request)
                except (ValueError, KeyError, TypeError, AttributeError, OSError) as err:
                    answer = {"ok": False, "error": f"bad control request: {err}"}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer).encode() + b"\n")

    # -- supervision ---------------------------------------------------------------------

    def supervise(self) -> None:
        """Replace a worker that died on its own (the others keep the port answering)."""
        while not self.stopping.wait(_POLL_S):
            with self.lock:
                for index, proc in enumerate(self.workers):
                    if proc.poll() is None:
                        continue
                    print(f"shipyard keeper: worker {proc.pid} exited ({proc.returncode})")
                    try:
                        [self.workers[index]] = self.start_generation(self.model_dir, 300, count=1)
                    except RuntimeError as err:
                        print(f"shipyard keeper: restarting a worker failed: {err}", flush=True)


def _listeners(host: str, port: int) -> list[socket.socket]:
    """The port's listening sockets: those of the server this keeper replaces on the same
    host and port (``SHIPYARD_TAKEOVER_SOCKET``), else one bound anew."""
    inherited: list[socket.socket] = []
    path = os.environ.pop(TAKEOVER_SOCKET_ENV, "")  # not for the workers
    if path:
        try:
            ports = receive_listeners(path)
        except OSError as err:
            print(f"shipyard keeper: no handover from {path} ({err}); binding the port")
            ports = {}
        for name, socks in ports.items():
            for sock in socks:
                if name == "http" and _serves(sock, host, port):
                    inherited.append(sock)
                else:
                    sock.close()  # our copy only: the old server keeps serving it
    return bind_listeners(host, port, 1, inherited)


def _serves(sock: socket.socket, host: str, port: int) -> bool:
    try:
        wanted = socket.getaddrinfo(host.strip("[]"), port, sock.family, socket.SOCK_STREAM)
    except OSError:
        return False
    return any(tuple(sock.getsockname()[:2]) == tuple(w[4][:2]) for w in wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shipyard-mlflow-keeper")
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--control-socket", required=True)
    args = parser.parse_args(argv)
    try:
        keeper = Keeper(args)
    except OSError as err:  # the port is held by another process (named), or unbindable
        print(f"Error: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, lambda *_: keeper.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: keeper.stopping.set())
    # The control socket first: a keeper that cannot be controlled must not start workers.
    control_path = Path(args.control_socket)
    control_path.unlink(missing_ok=True)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)  # only this user may send commands
    try:
        control.bind(str(control_path))
    finally:
        os.umask(old_umask)
    control.listen(8)
    # Answering from the start: a rolling replacement polls `status` until `ready`.
    threading.Thread(target=keeper.serve_control, args=(control,), daemon=True).start()
    try:
        with keeper.lock:
            keeper.workers = keeper.start_generation(args.model_dir, 600)
    except RuntimeError as err:
        print(f"Error: {err}", file=sys.stderr, flush=True)
        control.close()
        control_path.unlink(missing_ok=True)
        return 3
    keeper.ready = True
    print(f"shipyard keeper: serving {args.model_dir} on {args.host}:{args.port}", flush=True)
    keeper.supervise()
    control.close()
    control_path.unlink(missing_ok=True)
    with keeper.lock:
        keeper._retire(keeper.workers, grace=_STOP_GRACE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
