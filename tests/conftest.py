"""Fixtures shared across test folders."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shipyard.deployers.testing import isolated_home, kill_services_under

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway local PostgreSQL cluster on 127.0.0.1; yields its URL without a database.

    Runs where the PostgreSQL server binaries and psycopg are installed (Debian package
    `postgresql`, `pip install 'shipyard[postgres]'`); skips, saying so, elsewhere. Stopped
    by its process group; clusters of killed runs are removed (``pg_cluster``).
    """
    from pg_cluster import server_bindir, start_cluster, stop_cluster

    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'shipyard[postgres]'")
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("needs the PostgreSQL server binaries (Debian package postgresql)")
    cluster = start_cluster(bindir)
    try:
        yield cluster.url
    finally:
        stop_cluster(cluster.data)


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
