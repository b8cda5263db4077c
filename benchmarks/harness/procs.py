"""Processes: start a server, find its whole tree, measure its memory, stop it by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    """The root and all its descendants that are alive now."""
    children = _children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (shared pages split among sharers)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def tree_pss(root: int) -> tuple[int, int]:
    """(summed PSS in bytes, number of processes) over the tree of ``root``."""
    pids = process_tree(root)
    return sum(pss_bytes(p) for p in pids), len(pids)


class PeakMemory:
    """Samples the summed PSS of a process tree in a thread; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.peak, self.peak_procs = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total, count = tree_pss(self.root)
            if total > self.peak:
                self.peak, self.peak_procs = total, count
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Server:
    """A server process the harness started; stopped by PID (its process group)."""

    name: str
    argv: Sequence[str]
    cwd: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with open(self.log, "wb") as out:
            self.started_at = time.perf_counter()
            # A new session makes the server's PID its process-group id, so the
            # whole tree it forks can be signalled through that one PID.
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Stragglers that left the group (daemonised workers): kill them by PID.
        deadline = time.monotonic() + 10
        for pid in tree:
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
        self.proc = None


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read())


def wait_until(
    server: Server, probe: Callable[[], bool], timeout: float, poll: float = 0.01
) -> float:
    """Poll ``probe`` until true; seconds since the server's start. Raises if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited early:\n{server.tail()}")
        try:
            if probe():
                return time.perf_counter() - server.started_at
        except (OSError, ValueError):
            pass
        time.sleep(poll)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s:\n{server.tail()}")


_TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    with open("/proc/stat", encoding="utf-8") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user/nice
    return total - idle, total


def _tree_ticks(root: int) -> int:
    ticks = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
                parts = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat (12-15 after the name).
        ticks += sum(int(v) for v in parts[11:15])
    return ticks


class CpuAccount:
    """How much CPU went to processes other than ours (server tree + reaped children).

    The machine is shared: a foreign share well above zero means the numbers of that
    run were taken under outside load.
    """

    def __init__(self, root: int | None) -> None:
        self.root = root

    def __enter__(self) -> CpuAccount:
        import resource

        self._busy0, self._total0 = _machine_busy_ticks()
        self._own0 = _tree_ticks(self.root) if self.root else 0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._kids0 = ru.ru_utime + ru.ru_stime
        self._self0 = sum(os.times()[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        import resource

        busy1, total1 = _machine_busy_ticks()
        own = (_tree_ticks(self.root) if self.root else 0) - self._own0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        kids = (ru.ru_utime + ru.ru_stime - self._kids0) * _TICK
        me = (sum(os.times()[:2]) - self._self0) * _TICK
        total = max(total1 - self._total0, 1)
        self.foreign_pct = max(0.0, (busy1 - self._busy0 - own - kids - me) / total * 100)
        #: CPU seconds of the server's tree, and of the children reaped meanwhile (the
        #: load generator), over the measured time.
        self.server_cpu_s = own / _TICK
        self.client_cpu_s = kids / _TICK


def wait_for_quiet(max_wait: float, threshold_pct: float = 15.0) -> float:
    """Wait (up to max_wait s) until the machine's CPU is mostly idle; the busy % seen last."""
    deadline = time.monotonic() + max_wait
    busy_pct = 100.0
    while True:
        b0, t0 = _machine_busy_ticks()
        time.sleep(1.0)
        b1, t1 = _machine_busy_ticks()
        busy_pct = (b1 - b0) / max(t1 - t0, 1) * 100
        if busy_pct < threshold_pct or time.monotonic() > deadline:
            return busy_pct
