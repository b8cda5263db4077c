"""`shipyard batch predict` as a user runs it: summary, progress, one red line on error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from batch_helpers import RunCli, without_packages, write_input


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
    assert "predicting with logreg" in done.stderr  # the progress bar
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


def test_core_install_without_the_batch_extra_gets_install_advice(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame, run_cli: RunCli
) -> None:
    src = write_input(frame, tmp_path / "in.csv", "csv")
    out = tmp_path / "out.parquet"
    env = without_packages(tmp_path, "pyarrow")
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
