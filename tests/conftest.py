"""Fixtures shared across test folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.testing import free_port


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
