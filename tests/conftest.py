"""Fixtures shared across test folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shipyard.deployers.testing import isolated_home, kill_services_under
from shipyard.testing import free_port

if TYPE_CHECKING:
    from shipyard.store import Store


# A sitecustomize that makes the listed top-level packages unimportable in a child process,
# as in an install without the extra that provides them (they stay installed for the rest).
_BLOCKER = """
import os
import sys

_BLOCKED = set(filter(None, os.environ.get("SHIPYARD_TEST_BLOCKED", "").split(",")))


class _Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture
def without_packages(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """``without_packages("pyarrow", ...)``: environment variables for a child process
    in which those packages cannot be imported."""
    site = tmp_path / "blocker-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_BLOCKER)

    def env(*packages: str) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))
        return {"PYTHONPATH": path, "SHIPYARD_TEST_BLOCKED": ",".join(packages)}

    return env


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A fresh SHIPYARD_HOME (its own store, stacks, artifacts, model servers); every
    server started under it is killed by PID at teardown, never by name."""
    with isolated_home(tmp_path / "home") as path:
        try:
            yield path
        finally:
            kill_services_under(path)


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    """The store of ``home``, opened."""
    from shipyard.store import Store

    with Store.open() as opened:
        yield opened


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway local PostgreSQL cluster on 127.0.0.1; yields its URL without a database.

    Runs where the PostgreSQL server binaries and psycopg are installed (Debian package
    `postgresql`, `pip install 'shipyard[postgres]'`); skips, saying so, elsewhere.
    """
    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'shipyard[postgres]'")
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip("needs the PostgreSQL server binaries (Debian package postgresql)")
    bindir = bins[-1].parent
    data = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    db = str(data / "db")
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", db, "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    start = [str(bindir / "pg_ctl"), "-D", db, "-l", str(data / "log"), "-w", "-o", options]
    subprocess.run(_as_postgres([*start, "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", db, "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


# Targets that install an optional part (`make test-torch`, `make test-mlflow`) set this, so
# a test that would skip for want of that part fails instead: CI must run them, not skip.
_SKIPS_FAIL = os.environ.get("SHIPYARD_TEST_SKIPS_FAIL") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _SKIPS_FAIL and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, but SHIPYARD_TEST_SKIPS_FAIL=1 forbids it: {report.longrepr}"
    return report
