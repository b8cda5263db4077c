"""The README works line by line: after `make run` (examples/quickstart.py), each of its
code blocks runs, in order, in a fresh SHIPYARD_HOME and a fresh working directory.

Conventions the README keeps so this stays true (and fast):
- a ```python block runs with the venv's Python; one whose first line is ``# name.py``
  is written to that file instead (a later ``$ python name.py`` runs it);
- in a ```console block, each line starting with ``$ `` is a command (a trailing ``\\``
  continues it); the other lines are sample output, not compared;
- a command ending in `` &`` runs in the background; if it names ``--port N``, the next
  line waits until that port is ready;
- ```text and unlabelled blocks are reference syntax, not run.
Port 8080/8081 become free ports and ``.venv/bin/`` the running venv's.

Everything a step starts is stopped by the ``readme_processes`` fixture's finalizer, not by
the test: pytest-timeout's default method here (``signal``: SIGALRM raises in the test)
unwinds the test wherever it is, a finalizer still runs after it (the alarm fires once).
It kills the background commands' process groups, then every process group still running
with the test's SHIPYARD_HOME (a server a shell step or a deploy started, a Popen the
timeout interrupted before the test could note it). The ``thread`` method ends pytest with
``os._exit``, where nothing can clean up: keep the default.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.deployers.testing import kill_process_groups, kill_processes_under
from shipyard.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

Step = tuple[str, str]  # ("python"|"file"|"shell"|"background", text)


class ReadmeProcesses:
    """The README's SHIPYARD_HOME and the background commands started under it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.background: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        """Start ``argv`` in the background, in a process group of its own."""
        with log.open("wb") as out:
            self.background.append(
                subprocess.Popen(
                    argv, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
                )
            )

    def stop(self) -> list[int]:
        """Kill the background commands' groups, then whatever runs under the home."""
        kill_process_groups([p.pid for p in self.background if p.poll() is None])
        for proc in self.background:
            proc.poll()
        return kill_processes_under(self.home)


@pytest.fixture
def readme_processes(tmp_path: Path) -> Iterator[ReadmeProcesses]:
    processes = ReadmeProcesses(tmp_path / "home")
    try:
        yield processes
    finally:
        processes.stop()


def readme_steps(text: str) -> Iterator[Step]:
    for lang, body in _FENCE.findall(text):
        if lang == "python":
            first = body.splitlines()[0]
            name = re.fullmatch(r"# (\S+\.py)", first.strip())
            yield ("file", body) if name else ("python", body)
        elif lang == "console":
            command = ""
            for line in body.splitlines():
                if line.startswith("$ ") or command:
                    command += line.removeprefix("$ ").rstrip("\\").rstrip() + " "
                    if line.endswith("\\"):
                        continue
                    command = command.strip()
                    kind = "background" if command.endswith("&") else "shell"
                    yield kind, command.removesuffix("&").strip()
                    command = ""


def test_readme_steps_are_found() -> None:
    steps = list(readme_steps((ROOT / "README.md").read_text()))
    kinds = {kind for kind, _ in steps}
    assert {"python", "file", "shell", "background"} <= kinds
    assert len([s for s in steps if s[0] == "shell"]) >= 10


@pytest.mark.slow
# Every README command in order, each a fresh process (about 30, four of them deploys):
# 407 s at a load average of 24 on two cores, past the suite's 300 s default.
@pytest.mark.timeout(900)
def test_readme_runs_line_by_line(tmp_path: Path, readme_processes: ReadmeProcesses) -> None:
    home, work = readme_processes.home, tmp_path / "work"
    work.mkdir()
    http_port = _free_port_pair()
    # `serve --port N` puts gRPC on N + 1 (the README's 8081): both must be free.
    ports = {"8080": str(http_port), "8081": str(http_port + 1)}
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "120",
    }
    env.pop("SHIPYARD_STORE_URL", None)

    def run(args: list[str] | str, what: str, shell: bool = False) -> None:
        proc = subprocess.run(
            args, cwd=work, env=env, shell=shell, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"{what}\n{proc.stdout}\n{proc.stderr}"

    def localize(command: str) -> str:
        command = command.replace(".venv/bin/", f"{BIN}/")
        command = command.replace("examples/", f"{ROOT}/examples/")
        for old, new in ports.items():
            command = command.replace(old, new)
        return command

    run([sys.executable, str(ROOT / "examples" / "quickstart.py")], "make run")
    for index, (kind, text) in enumerate(readme_steps((ROOT / "README.md").read_text())):
        if kind == "python":
            run([sys.executable, "-c", text], text)
        elif kind == "file":
            name = text.splitlines()[0].removeprefix("# ").strip()
            (work / name).write_text(text)
        elif kind == "background":
            command = localize(text)
            readme_processes.start(shlex.split(command), work, env, tmp_path / f"bg-{index}.log")
            port = re.search(r"--(?:http-)?port (\d+)", command)
            if port:
                _wait_ready(f"http://127.0.0.1:{port.group(1)}/v2/health/ready", command)
        else:
            run(localize(text), text, shell=True)


def _free_port_pair() -> int:
    """A free port whose next port is free too (another user's server may hold it)."""
    from shipyard.services.process import port_is_free

    for _ in range(200):
        port = free_port()
        if port < 65535 and port_is_free("127.0.0.1", port + 1):
            return port
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def _wait_ready(url: str, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not ready at {url} within {timeout:.0f} s")


# A test that hangs under the fixture: a background command with a child in its group, and
# a detached process the test never noted (as a server a shell step starts), all with the
# fixture's SHIPYARD_HOME. It writes their PIDs and start times, then sleeps.
_HANGING_TEST = """
import json, os, subprocess, sys, time
from pathlib import Path

from shipyard.deployers.testing import processes_under
from shipyard.services.process import process_start_time
from shipyard.testing import wait_until
from test_readme import ReadmeProcesses, readme_processes

SLEEP = "import time; time.sleep(600)"
PARENT = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', %r]); " % SLEEP
PARENT += "time.sleep(600)"


def test_hangs(readme_processes: ReadmeProcesses, tmp_path: Path) -> None:
    home = readme_processes.home
    home.mkdir()
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    readme_processes.start([sys.executable, "-c", PARENT], tmp_path, env, tmp_path / "bg.log")
    subprocess.Popen([sys.executable, "-c", SLEEP], env=env, start_new_session=True)
    wait_until(lambda: len(processes_under(home)) == 3, "three processes under the home")
    pids = {pid: process_start_time(pid) for pid in processes_under(home)}
    Path(os.environ["HANGING_PIDS"] + ".tmp").write_text(json.dumps(pids))
    os.replace(os.environ["HANGING_PIDS"] + ".tmp", os.environ["HANGING_PIDS"])
    time.sleep(600)
"""


def test_a_timeout_mid_test_leaves_nothing_running_under_the_home(tmp_path: Path) -> None:
    from shipyard.services.process import process_start_time
    from shipyard.testing import wait_until

    (tmp_path / "test_hanging.py").write_text(_HANGING_TEST)
    pids_file = tmp_path / "pids.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
        "HANGING_PIDS": str(pids_file),
    }
    # --timeout installs pytest-timeout's SIGALRM handler; the SIGALRM below fires it now
    # rather than after a wall-clock time (the same handler, no race with a slow start).
    argv = [sys.executable, "-m", "pytest", "test_hanging.py", "-q", "-p", "no:cacheprovider"]
    argv += ["-p", "no:kmock", "--timeout=600", "--timeout-method=signal"]
    run = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    pids: dict[str, int] = {}
    try:
        wait_until(lambda: pids_file.exists() or run.poll() is not None, "the hanging test", 120)
        assert run.poll() is None, run.communicate()[0]
        pids = json.loads(pids_file.read_text())
        os.kill(run.pid, signal.SIGALRM)
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 1 and "Timeout" in out, out
        left = [p for p, started in pids.items() if process_start_time(int(p)) == started]
        assert left == [], f"still running after the timeout: {left}\n{out}"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        kill_process_groups(
            [int(p) for p, started in pids.items() if process_start_time(int(p)) == started]
        )
