from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.deployers.testing import isolated_home, kill_services_under


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with isolated_home(tmp_path / "home") as path:
        try:
            yield path
        finally:
            kill_services_under(path)
