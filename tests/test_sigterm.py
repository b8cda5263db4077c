"""SIGTERM to a test run (an outer ``timeout``) runs the fixtures' finalizers before it
exits, so what they started does not outlive the run (``conftest._on_sigterm``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from shipyard.testing import wait_until

# A run of one test whose fixture starts a process in its own session (as the model
# server and PostgreSQL fixtures do, so a signal to the run's process group misses it)
# and kills it in its finalizer; the test itself waits to be interrupted.
_TINY_TEST = textwrap.dedent(
    """
    import subprocess
    import sys
    import time
    from pathlib import Path

    import pytest

    HERE = Path(__file__).parent


    @pytest.fixture
    def sleeper():
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
        )
        (HERE / "sleeper.pid").write_text(str(proc.pid))
        try:
            yield proc
        finally:
            proc.kill()
            proc.wait(timeout=30)
            (HERE / "finalized").write_text("yes")


    def test_waits(sleeper):
        (HERE / "running").write_text("yes")
        time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_runs_the_fixture_finalizers(tmp_path: Path) -> None:
    (tmp_path / "test_tiny.py").write_text(_TINY_TEST)
    tests_dir = Path(__file__).parent
    path = os.pathsep.join(filter(None, [str(tests_dir), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path}
    # Our conftest loaded as a plugin (``-p conftest``): the run uses its SIGTERM handling
    # and nothing of this repository's pytest configuration.
    command = [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider"]
    command += ["-p", "no:kmock"]  # as in pyproject.toml: it needs pytest-asyncio
    run = subprocess.Popen(
        [*command, "-q", "test_tiny.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sleeper = 0
    try:
        wait_until(lambda: (tmp_path / "running").exists() or run.poll() is not None, "the test")
        assert run.poll() is None, run.communicate()[0]
        sleeper = int((tmp_path / "sleeper.pid").read_text())
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=120)
        assert (tmp_path / "finalized").exists(), output
        assert not _alive(sleeper), output
        assert run.returncode == 2, output  # interrupted, as by Ctrl-C
        assert "SIGTERM" in output
    finally:
        for pid in (run.pid, sleeper):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.wait(timeout=30)


def _sleep_long() -> None:
    time.sleep(600)


def test_a_child_forked_by_a_test_still_dies_of_sigterm() -> None:
    # It inherits the run's handler; an interrupt there would turn its -15 into exit 1.
    child = multiprocessing.get_context("fork").Process(target=_sleep_long)
    child.start()
    try:
        wait_until(lambda: child.pid is not None and _alive(child.pid), "the child")
        assert child.pid is not None
        os.kill(child.pid, signal.SIGTERM)
        child.join(timeout=60)
        assert child.exitcode == -signal.SIGTERM
    finally:
        if child.is_alive():
            child.kill()
            child.join(timeout=30)
