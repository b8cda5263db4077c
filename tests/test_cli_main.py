"""The CLI entry point: version, help, and how a user's mistake is reported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shipyard import __version__
from shipyard.cli import _errors
from shipyard.errors import MissingDependencyError, ServiceNotFoundError


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"shipyard {__version__}"


def test_help_lists_the_serve_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_unknown_command_is_a_usage_error_not_a_traceback() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no-such-command" in result.stderr


def test_shipyard_error_is_one_red_line_keeping_brackets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _errors.report(MissingDependencyError("onnxruntime", "onnx"))
    err = capsys.readouterr().err
    assert code == 1
    # Rich markup must not swallow the extra's brackets: the advice has to be copyable.
    assert "pip install 'shipyard[onnx]'" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_errors, "_debug", True)
    try:
        raise ServiceNotFoundError("No model server with UUID 'abc'.")
    except ServiceNotFoundError as err:
        _errors.report(err)
    err_text = capsys.readouterr().err
    assert "Traceback" in err_text
    assert "No model server with UUID 'abc'." in err_text
