from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.deployers.testing import isolated_home
from shipyard.store import Store


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with isolated_home(tmp_path / "home") as path:
        yield path


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with Store.open() as opened:
        yield opened
