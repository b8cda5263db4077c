"""The README works line by line: after `make run` (examples/quickstart.py), each of its
code blocks runs, in order, in a fresh SHIPYARD_HOME and a fresh working directory.

Conventions the README keeps so this stays true (and fast):
- a ```python block runs with the venv's Python; one whose first line is ``# name.py``
  is written to that file instead (a later ``$ python name.py`` runs it);
- in a ```console block, each line starting with ``$ `` is a command (a trailing ``\\``
  continues it); the other lines are sample output, not compared;
- a command ending in `` &`` runs in the background (stopped at the end, by process
  group); if it names ``--port N``, the next line waits until that port is ready;
- ```text and unlabelled blocks are reference syntax, not run.
Port 8080/8081 become free ports and ``.venv/bin/`` the running venv's.
"""

from __future__ import annotations

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

from shipyard.deployers.testing import kill_services_under
from shipyard.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

Step = tuple[str, str]  # ("python"|"file"|"shell"|"background", text)


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
def test_readme_runs_line_by_line(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
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
    background: list[subprocess.Popen[bytes]] = []

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

    try:
        run([sys.executable, str(ROOT / "examples" / "quickstart.py")], "make run")
        for kind, text in readme_steps((ROOT / "README.md").read_text()):
            if kind == "python":
                run([sys.executable, "-c", text], text)
            elif kind == "file":
                name = text.splitlines()[0].removeprefix("# ").strip()
                (work / name).write_text(text)
            elif kind == "background":
                command = localize(text)
                with (tmp_path / f"bg-{len(background)}.log").open("wb") as log:
                    background.append(
                        subprocess.Popen(
                            shlex.split(command), cwd=work, env=env, stdout=log, stderr=log,
                            start_new_session=True,
                        )
                    )  # fmt: skip
                port = re.search(r"--(?:http-)?port (\d+)", command)
                if port:
                    _wait_ready(f"http://127.0.0.1:{port.group(1)}/v2/health/ready", command)
            else:
                run(localize(text), text, shell=True)
    finally:
        for proc in background:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        kill_services_under(home)


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
