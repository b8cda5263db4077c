"""LocalDaemonService: a service run as a detached local process that outlives the CLI.

Each service has a run directory ``$SHIPYARD_HOME/services/<uuid>/`` holding
``service.json`` (the service), ``pid.json`` (pid and kernel start time) and
``service.log`` (the process's output, appended across restarts).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import model_validator

from shipyard._redact import mask_credentials
from shipyard.config import get_settings
from shipyard.errors import ServiceError, StoreUnwritableError
from shipyard.services import process
from shipyard.services.service import Service
from shipyard.services.state import ServiceState

__all__ = ["LocalDaemonService"]

_POLL_S = 0.1
_LOG_LINES_IN_ERRORS = 8
#: First characters of the line written to the log before each start.
_BANNER = "--- shipyard "


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


class LocalDaemonService(Service):
    """Subclasses say what to run (:meth:`command`); this class runs and watches it."""

    run_dir: str = ""

    # -- what to run (subclasses) --------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _assign_ports(self) -> None:
        """Pick free ports for what has none yet; kept across restarts once chosen."""
        if self.endpoint.port is None:
            self.endpoint = self.endpoint.model_copy(
                update={"port": process.free_port(self.endpoint.host)}
            )

    def _ports(self) -> list[int]:
        return [] if self.endpoint.port is None else [self.endpoint.port]

    # -- files ---------------------------------------------------------------------------

    @model_validator(mode="after")
    def _pin_run_dir(self) -> LocalDaemonService:
        # Chosen once, when the service is made: a later SHIPYARD_HOME must not move it.
        if not self.run_dir:
            object.__setattr__(self, "run_dir", str(get_settings().services_dir / self.uuid))
        return self

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    @property
    def log_path(self) -> Path:
        return self.run_path / "service.log"

    @property
    def pid_file(self) -> Path:
        """``pid.json``: pid and kernel start time of the running process."""
        return self.run_path / "pid.json"

    def _make_run_dir(self) -> None:
        # Private: it holds the config, the log and the control socket of the server.
        self.run_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.run_path.mkdir(mode=0o700, exist_ok=True)
        self.run_path.chmod(0o700)

    def _write_config(self) -> None:
        self._make_run_dir()
        target = self.run_path / "service.json"
        _write_private(target.with_suffix(".json.tmp"), self.to_json())
        target.with_suffix(".json.tmp").replace(target)

    def persist(self) -> None:
        if self.run_path.is_dir():
            try:
                self._write_config()
            except OSError as err:
                self.not_recorded(
                    StoreUnwritableError(
                        f"Cannot write {self.run_path / 'service.json'}: {err}. Free some "
                        "space or make the folder writable."
                    )
                )
        super().persist()

    def _forget_pid(self) -> None:
        # A pid file that cannot be removed (read-only folder) is harmless: the recorded
        # start time no longer matches a live process, so it reads as "not running".
        with contextlib.suppress(OSError):
            self.pid_file.unlink(missing_ok=True)

    def pid_info(self) -> tuple[int, int] | None:
        """(pid, start time) of the last process started, if it was not stopped."""
        try:
            data = json.loads(self.pid_file.read_text())
            return int(data["pid"]), int(data["start_time"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def running_pid(self) -> int | None:
        """PID of the running process, or None (reads the pid file and the process table)."""
        info = self.pid_info()
        if info is None or process.process_start_time(info[0]) != info[1]:
            return None
        return info[0]

    def _log_tail(self, lines: int = _LOG_LINES_IN_ERRORS) -> str:
        """The last ``lines`` lines of the latest run only: an earlier run's lines (and
        the banner with the command line) say nothing about why this one failed."""
        try:
            with self.log_path.open(errors="replace") as handle:
                tail = collections.deque(handle, maxlen=lines)
        except OSError:
            return ""
        latest = list(tail)
        for index in range(len(latest) - 1, -1, -1):
            if latest[index].startswith(_BANNER):
                latest = latest[index + 1 :]
                break
        return "".join(latest).rstrip()

    # -- lifecycle -----------------------------------------------------------------------

    def _gone_reason(self, pid: int, start_time: int) -> str:
        if process.process_start_time(pid) is not None:
            return f"its pid {pid} now belongs to another process"
        return f"process {pid} {process.exit_description(process.reap(pid))}"

    def _refresh(self) -> None:
        """Adopt what another copy of this service (another process) last wrote."""
        try:
            text = (self.run_path / "service.json").read_text()
            stored = type(self).model_validate_json(text)
        except (OSError, ValueError):
            return
        if stored.uuid != self.uuid:
            return
        for name in type(self).model_fields:
            if getattr(self, name) != getattr(stored, name):
                setattr(self, name, getattr(stored, name))

    def check_status(self) -> tuple[ServiceState, str]:
        self._refresh()
        before = self.model_dump_json()
        info = self.pid_info()
        alive = info is not None and process.process_start_time(info[0]) == info[1]
        if alive:
            healthy, why = self.endpoint.check()
            if healthy:
                self.status.update(ServiceState.ACTIVE)
            elif self.status.state not in (
                ServiceState.PENDING_STARTUP,
                ServiceState.PENDING_SHUTDOWN,
            ):
                self.status.update(ServiceState.ERROR, f"running but unhealthy: {why}")
        elif info is not None:
            pid, start_time = info
            reason = self._gone_reason(pid, start_time)
            # Clear up what a killed supervisor leaves behind (workers holding the port).
            process.terminate(pid, start_time, timeout=5.0)
            self._forget_pid()
            if self.admin_state == ServiceState.ACTIVE:
                tail = self._log_tail()
                self.status.update(
                    ServiceState.ERROR,
                    f"the server stopped behind the registry's back ({reason}); "
                    f"restart it with `shipyard model-deployer models start {self.uuid}`."
                    + (f"\nLast log lines:\n{tail}" if tail else ""),
                )
            else:
                self.status.update(ServiceState.INACTIVE)
        elif self.admin_state == ServiceState.ACTIVE and self.status.state != ServiceState.ERROR:
            self.status.update(ServiceState.ERROR, "the server is not running although it should")
        elif self.admin_state != ServiceState.ACTIVE:
            self.status.update(ServiceState.INACTIVE)
        if self.model_dump_json() != before:
            # Only a change is written: listing many servers costs no store writes.
            self.persist()
        return self.status.state, self.status.last_error

    def start(self, timeout: float = 60.0, report: Callable[[str], object] | None = None) -> None:
        """Start the process (if not running) and wait until it is healthy; ``report``
        is told each phase as it begins (the CLI's progress display)."""
        if self.status.state == ServiceState.PENDING_SHUTDOWN and self.running_pid() is not None:
            raise ServiceError(
                f"The service {self.uuid} is shutting down; wait for it to stop, then start it."
            )
        self.admin_state = ServiceState.ACTIVE
        if self.running_pid() is None:
            if self.status.state in (ServiceState.ACTIVE, ServiceState.PENDING_SHUTDOWN):
                # Recorded as running or stopping, but no process: observe that first.
                self.status.update(ServiceState.INACTIVE)
            self._spawn()
        if report is not None:
            report(f"loading the model; health check {self._health_what()}")
        self._wait_healthy(timeout)
        if report is not None:
            report("health check passed")

    def _health_what(self) -> str:
        check = self.endpoint.health_check
        path = getattr(check, "path", "") if check is not None else ""
        return f"({self.endpoint.url}{path})" if path and self.endpoint.url else ""

    def _busy_ports(self, wait: float = 5.0) -> list[int]:
        """Ports someone else holds; a port a just-stopped server held is waited for."""
        deadline = time.monotonic() + wait
        while True:
            busy = [p for p in self._ports() if not process.port_is_free(self.endpoint.host, p)]
            if not busy or time.monotonic() > deadline:
                return busy
            time.sleep(_POLL_S)

    def _spawn(self) -> None:
        self._assign_ports()
        busy = self._busy_ports()
        if busy:
            message = (
                f"Cannot start the service {self.uuid}: port {busy[0]} on "
                f"{self.endpoint.host} is in use by another process. Stop that process, "
                "or deploy with another --port."
            )
            self.status.update(ServiceState.ERROR, message)
            self.persist()
            raise ServiceError(message)
        command = self.command()
        self.write_banner(command)
        try:
            pid, start_time = process.spawn_detached(
                command, log_path=self.log_path, env=self.environment()
            )
        except OSError as err:
            self.status.update(ServiceState.ERROR, f"could not start {command[0]}: {err}")
            self.persist()
            raise ServiceError(f"Cannot start the service {self.uuid}: {err}") from err
        _write_private(self.pid_file, json.dumps({"pid": pid, "start_time": start_time}))
        self.status.update(ServiceState.PENDING_STARTUP)
        self.persist()

    def write_banner(self, command: list[str]) -> None:
        """Mark the start of a run in the log (credentials hidden)."""
        self._make_run_dir()
        # 0600 from the first byte: the log may hold what the server printed.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as log:
            shown = mask_credentials(" ".join(command))
            log.write(f"{_BANNER}{datetime.now(UTC).isoformat()}: {shown}\n")

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        why = ""
        while True:
            info = self.pid_info()
            if info is None or process.process_start_time(info[0]) != info[1]:
                reason = "it was never started" if info is None else self._gone_reason(*info)
                self.pid_file.unlink(missing_ok=True)
                tail = self._log_tail()
                message = f"the server failed to start ({reason})" + (
                    f"; last log lines:\n{tail}" if tail else ""
                )
                self.status.update(ServiceState.ERROR, message)
                self.persist()
                raise ServiceError(f"Service {self.uuid}: {message}")
            healthy, why = self.endpoint.check()
            if healthy:
                healthy, why = self._fully_started()
            if healthy:
                self.status.update(ServiceState.ACTIVE)
                self.persist()
                return
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        process.terminate(*info, timeout=5.0, force=True)
        self.pid_file.unlink(missing_ok=True)
        message = f"the server did not become healthy within {timeout:.0f}s ({why}); stopped it"
        self.status.update(ServiceState.ERROR, message)
        self.persist()
        raise ServiceError(f"Service {self.uuid}: {message}. See its log: {self.log_path}")

    def _fully_started(self) -> tuple[bool, str]:
        """Whether the server has finished starting once its health check passes, else
        why not: a server whose health check one of several processes answers says so
        here (the default: the health check is the whole answer)."""
        return True, ""

    def stop(self, timeout: float = 60.0, force: bool = False) -> None:
        """SIGTERM (in-flight requests finish), SIGKILL after ``timeout`` or with ``force``."""
        self.admin_state = ServiceState.INACTIVE
        info = self.pid_info()
        if info is not None:
            self.status.update(ServiceState.PENDING_SHUTDOWN)
            self.persist()
            process.terminate(*info, timeout=timeout, force=force)
            self._forget_pid()
        self.status.update(ServiceState.INACTIVE)
        self.persist()

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        self.stop(timeout=timeout, force=force)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.run_path)

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Generator[str, None, None]:
        """Lines of the process's log; with ``follow``, new lines until the process ends."""
        try:
            handle = self.log_path.open(errors="replace")
        except FileNotFoundError:
            return
        with handle:
            lines: Iterable[str] = handle
            if tail is not None:
                lines = collections.deque(handle, maxlen=tail) if tail > 0 else []
            for line in lines:
                yield line.rstrip("\n")
            while follow:
                line = handle.readline()
                if line:
                    yield line.rstrip("\n")
                elif self.running_pid() is None:
                    return
                else:
                    time.sleep(0.2)
