"""A fresh SHIPYARD_HOME per test: its own store, stack, artifacts and model servers.

Model servers a test started are killed at teardown by PID (checked against the start
time recorded in their run directory), never by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.deployers.testing import kill_services_under


@pytest.fixture
def shipyard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    try:
        yield home
    finally:
        kill_services_under(home)
