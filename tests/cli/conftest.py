from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result


def invoke(*args: str) -> Result:
    """Run the CLI in-process; a ShipyardError stays in ``result.exception``."""
    from shipyard.cli.main import app

    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = invoke(*args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def shipyard(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``shipyard`` as its own process, as a user does."""
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        env={**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_red_line(result: subprocess.CompletedProcess[str]) -> str:
    """The user's mistake is one line on stderr, exit code 1, no traceback."""
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0].removeprefix("Error: ")
