"""examples/mlflow_registry runs as its README says, against the session's tracking server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Registry

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "mlflow_registry" / "run.py"


@pytest.mark.timeout(900)
def test_example_promotes_and_the_server_follows(home: Path, registry: Registry) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--tracking-uri", registry.tracking_uri],
        env={**os.environ, "SHIPYARD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("v1 at ") for line in lines), result.stdout
    assert any(line.startswith("v2 at ") and "same server: True" in line for line in lines)
    assert any(
        line.startswith("During the update:") and line.endswith(" 0 failed.") for line in lines
    )
