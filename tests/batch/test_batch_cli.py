"""`shipyard batch predict` as a user runs it: summary, progress, one red line on error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from batch_helpers import RunCli, write_input


def test_cli_prints_a_summary(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame, run_cli: RunCli
) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out.csv"
    done = run_cli(
        "batch", "predict", str(sklearn_model), "-i", str(src), "-o", str(out),
        "--id-column", "id", "--keep-columns", "city", "--batch-size", "100",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if line.strip()}
    assert lines["rows"] == "1,000" and lines["rejected"] == "0"
    assert lines["output"] == str(out)
    assert "rows/s" in lines
    bar = [line for line in done.stderr.splitlines() if "\u2501" in line]  # the progress bar
    assert bar and bar[-1].startswith("logreg ") and "1,000/1,000 " in bar[-1]
    # One rate, not two: the bar's last figure is the summary's.
    assert f" {lines['rows/s']} rows/s " in bar[-1], (bar[-1], lines["rows/s"])
    assert list(pd.read_csv(out).columns) == ["id", "city", "prediction"]


def test_cli_errors_are_one_red_line(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame, run_cli: RunCli
) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"keep me")
    done = run_cli("batch", "predict", str(sklearn_model), "-i", str(src), "-o", str(out))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: The output {out} already exists; pass --overwrite to replace it, or choose "
        "another --output."
    ]
    assert out.read_bytes() == b"keep me"
    both = run_cli(
        "batch", "predict", str(sklearn_model), "--service", "http://127.0.0.1:1/v2/models/x",
        "-i", str(src), "-o", str(tmp_path / "o2.parquet"),
    )  # fmt: skip
    assert both.returncode == 2 and "MODEL_URI or --service" in both.stderr
    neither = run_cli("batch", "predict", "-i", str(src), "-o", str(tmp_path / "o3.parquet"))
    assert neither.returncode == 2 and "give the model: MODEL_URI, or --service" in neither.stderr
    assert "Value error" not in neither.stderr


def test_core_install_without_the_batch_extra_gets_install_advice(
    tmp_path: Path,
    sklearn_model: Path,
    frame: pd.DataFrame,
    run_cli: RunCli,
    without_packages: Callable[..., dict[str, str]],
) -> None:
    src = write_input(frame, tmp_path / "in.csv", "csv")
    out = tmp_path / "out.parquet"
    env = without_packages("pyarrow")
    done = run_cli("batch", "predict", str(sklearn_model), "-i", str(src), "-o", str(out), env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: The package 'pyarrow' is needed for batch inference but is not installed. "
        "Install it with: pip install 'shipyard[batch]'"
    ]
    assert not out.exists()
    # The blocker is what made the difference: the same command works with pyarrow.
    assert (
        run_cli("batch", "predict", str(sklearn_model), "-i", str(src), "-o", str(out)).returncode
        == 0
    )


@pytest.mark.parametrize(("rows", "state"), [(10_000_000, "done"), (4_000_000, "ETA ")])
def test_progress_bar_fits_80_columns(
    rows: int, state: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shipyard.batch._progress import JobProgress

    monkeypatch.setenv("COLUMNS", "80")
    progress = JobProgress(True, 10_000_000, 0, "churn-model-of-the-growth-team")
    progress.advance(rows, 0)
    progress.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    # One line, all of it: the full total, the rate and the ETA, the long name cut.
    assert len(lines) == 1, lines
    assert len(lines[0]) <= 80, lines[0]
    assert lines[0].startswith("churn-model-of-the-\u2026 ")
    assert f"{rows:,}/10,000,000 " in lines[0]
    assert " rows/s " in lines[0] and state in lines[0]


def test_help_reads_at_80_columns(run_cli: RunCli) -> None:
    # Twenty-odd options in one table left each help text a column of two-word lines,
    # some cut off with "…": grouped in panels, every help text is whole and wide.
    import typer

    from shipyard.cli.main import app

    command = typer.main.get_command(app).commands["batch"].commands["predict"]  # type: ignore[attr-defined]
    done = run_cli("batch", "predict", "--help", env={"COLUMNS": "80", "TERM": "xterm"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    assert "…" not in done.stdout
    words = done.stdout.replace("│", " ").split()
    helps = [p.help for p in command.params if getattr(p, "help", None)]
    assert len(helps) > 20
    for help_text in helps:
        expected = help_text.split()
        # The help's words, in order and whole.
        assert any(words[i : i + len(expected)] == expected for i in range(len(words))), help_text
        # Its column starts left of the middle: at least 30 characters wide.
        first = next(line for line in lines if f" {expected[0]}" in line)
        assert first.index(f" {expected[0]}") < 50, first
