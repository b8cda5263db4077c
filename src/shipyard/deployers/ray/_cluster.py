"""Ray nodes that Shipyard starts and owns: a head (``address: local``) and, for tests and
benchmarks, more nodes joined to it.

Each node is ``ray start --block`` in a session (so a process group) of its own: every Ray
process it starts (GCS, raylet, workers, agents) stays in that group, and stopping the node
stops that group by its id. Never ``ray stop``: it kills every Ray process on the machine by
name, other users' clusters included.

Everything binds to loopback unless told otherwise: Ray resolves ``127.0.0.1`` to the
machine's outward address for a head, which ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` turns
off (a joining node takes its address from the route to the head, loopback here). Every port
is chosen free up front, so two clusters on one machine do not fight over Ray's defaults.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ServiceError
from shipyard.services import process

__all__ = ["RayNode", "start_head", "start_worker"]

_READY_LINE = "Ray runtime started"
_POLL_S = 0.2


def _ray_command() -> list[str]:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        from shipyard.errors import MissingDependencyError

        raise MissingDependencyError("ray", "ray", "a local Ray cluster")
    return [sys.executable, "-m", "shipyard.deployers.ray._node"]


@dataclass
class RayNode:
    """One ``ray start --block`` process group: where it runs and how to find it again."""

    pid: int
    start_time: int
    address: str
    """The head's GCS address (``host:port``), the same for every node of the cluster."""
    temp_dir: str
    log_path: str
    head: bool
    client_port: int | None = None
    """Ray Client port of a head (``ray://host:port``)."""
    owned_dirs: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return process.process_start_time(self.pid) == self.start_time

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the node's process group, SIGKILL what is left after ``timeout``."""
        process.terminate(self.pid, self.start_time, timeout=timeout)

    def remove_files(self) -> None:
        for directory in self.owned_dirs:
            shutil.rmtree(directory, ignore_errors=True)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RayNode | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


#: Ray's default range for worker processes' ports; its own components must stay out of it.
_WORKER_PORTS = range(10002, 20000)


def _free_ports(host: str, count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = process.free_port(host, exclude=ports)
        if port not in _WORKER_PORTS:
            ports.append(port)
    return ports


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> tuple[int, int]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return process.spawn_detached(argv, log_path=log_path, env=env)


def _auth_env(env: dict[str, str], host: str) -> dict[str, str]:
    """A loopback cluster is reachable from this machine only: no token, unless the
    environment asks for one (Ray otherwise turns token auth on whenever some earlier
    local ``ray.init`` left a token in ~/.ray, shared by every user of the machine)."""
    if host.startswith("127."):
        env.setdefault("RAY_AUTH_MODE", "disabled")
    return env


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _wait_started(pid: int, start_time: int, log_path: Path, offset: int, timeout: float) -> None:
    """Until this start's lines (past ``offset``: the log is appended to) say it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log_path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
        if _READY_LINE in text:
            return
        if process.process_start_time(pid) != start_time:
            tail = "\n".join(text.splitlines()[-8:])
            raise ServiceError(
                f"`ray start` {process.exit_description(process.reap(pid))}:\n{tail}"
            )
        time.sleep(_POLL_S)
    process.terminate(pid, start_time, timeout=5.0, force=True)
    raise ServiceError(f"The Ray node did not start within {timeout:.0f}s; see its log: {log_path}")


def _common_args(host: str, num_cpus: float | None, object_store_memory: int | None) -> list[str]:
    node_manager, object_manager, agent_listen, agent_grpc, runtime_env, metrics = _free_ports(
        host, 6
    )
    args = [
        "--block",
        "--disable-usage-stats",
        f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}",
        f"--dashboard-agent-listen-port={agent_listen}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}",
    ]
    if num_cpus is not None:
        args.append(f"--num-cpus={num_cpus:g}")
    if object_store_memory is not None:
        args.append(f"--object-store-memory={object_store_memory}")
    return args


#: Ray gives a raylet 30 s to register with the GCS; on a loaded machine it can take
#: longer, and the node gives up. Such a start is tried again, at most this often.
_ATTEMPTS = 3
_SLOW_START = "timed out during startup"


def _retrying(start: Callable[[], RayNode]) -> RayNode:
    for attempt in range(_ATTEMPTS):
        try:
            return start()
        except ServiceError as err:
            if _SLOW_START not in str(err) or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def start_head(**kwargs: Any) -> RayNode:
    """Start a Ray head in its own process group; returns once it accepts nodes and drivers.
    Keywords: ``host``, ``num_cpus``, ``object_store_memory``, ``log_path``, ``timeout``."""
    return _retrying(lambda: _start_head(**kwargs))


def start_worker(head: str, **kwargs: Any) -> RayNode:
    """Join a node to the cluster whose GCS is at ``head`` (``host:port``).
    Keywords: ``num_cpus``, ``object_store_memory``, ``log_path``, ``timeout``."""
    return _retrying(lambda: _start_worker(head, **kwargs))


def _start_head(
    *,
    host: str = "127.0.0.1",
    num_cpus: float | None = None,
    object_store_memory: int | None = None,
    log_path: Path,
    timeout: float = 120.0,
) -> RayNode:
    gcs_port, client_port, dashboard_port = _free_ports(host, 3)
    # Short: Ray's Unix socket paths live under it and must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="sy-ray-")
    argv = [
        *_ray_command(),
        "start",
        "--head",
        f"--node-ip-address={host}",
        f"--port={gcs_port}",
        f"--ray-client-server-port={client_port}",
        "--include-dashboard=false",
        f"--dashboard-port={dashboard_port}",
        f"--temp-dir={temp_dir}",
        *_common_args(host, num_cpus, object_store_memory),
    ]
    env = dict(os.environ)
    if host in ("127.0.0.1", "localhost"):
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep the head on loopback
    offset = _log_size(log_path)
    pid, start_time = _spawn(argv, log_path, _auth_env(env, host))
    node = RayNode(
        pid=pid,
        start_time=start_time,
        address=f"{host}:{gcs_port}",
        temp_dir=temp_dir,
        log_path=str(log_path),
        head=True,
        client_port=client_port,
        owned_dirs=[temp_dir],
    )
    try:
        _wait_started(pid, start_time, log_path, offset, timeout)
    except BaseException:
        node.stop(timeout=5.0)
        node.remove_files()
        raise
    return node


def _start_worker(
    head: str,
    *,
    num_cpus: float | None = None,
    object_store_memory: int | None = None,
    log_path: Path,
    timeout: float = 120.0,
) -> RayNode:
    host = head.rsplit(":", 1)[0]
    argv = [
        *_ray_command(),
        "start",
        f"--address={head}",
        *_common_args(host, num_cpus, object_store_memory),
    ]
    offset = _log_size(log_path)
    pid, start_time = _spawn(argv, log_path, _auth_env(dict(os.environ), host))
    node = RayNode(
        pid=pid,
        start_time=start_time,
        address=head,
        temp_dir="",
        log_path=str(log_path),
        head=False,
    )
    try:
        _wait_started(pid, start_time, log_path, offset, timeout)
    except BaseException:
        node.stop(timeout=5.0)
        raise
    return node
