"""``shipyard pipeline runs list|describe`` against runs recorded in a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.pipelines import PipelineRunFailedError, pipeline, step


@step
def produce(n: int) -> list[int]:
    return list(range(n))


@step
def consume(values: list[int]) -> int:
    if not values:
        raise ValueError("no values to add up")
    return sum(values)


@pipeline
def adder(n: int) -> None:
    consume(produce(n))


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, ["pipeline", *args])
    if result.exception is not None:
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_runs_list_and_describe_as_json(home: Path) -> None:
    good = adder(3)
    with pytest.raises(PipelineRunFailedError) as caught:
        adder(0)
    bad = caught.value.run

    listed = json.loads(_invoke("runs", "list", "--output", "json"))
    assert [r["id"] for r in listed] == [bad.id, good.id]  # newest first
    assert listed[0]["status"] == "failed"
    assert listed[1]["steps"] == {"produce": "completed", "consume": "completed"}

    described = json.loads(_invoke("runs", "describe", bad.id[:10], "--output", "json"))
    steps = {s["name"]: s for s in described["steps"]}
    assert steps["produce"]["status"] == "completed"
    assert steps["produce"]["outputs"]["output"]["summary"] == {"value": []}
    assert steps["consume"]["status"] == "failed"
    assert steps["consume"]["error"] == "ValueError: no values to add up"
    assert steps["consume"]["duration_s"] >= 0


def test_runs_table_output_names_steps_and_statuses(home: Path) -> None:
    run = adder(2)
    table = _invoke("runs", "list", "--pipeline", "adder")
    assert run.id[:8] in table and "adder" in table
    described = _invoke("runs", "describe", run.id)
    assert "produce" in described and "consume" in described and "completed" in described


def test_unknown_run_is_one_clear_error(home: Path) -> None:
    from shipyard.pipelines import RunNotFoundError

    adder(1)
    with pytest.raises(RunNotFoundError, match="shipyard pipeline runs list"):
        _invoke("runs", "describe", "nope")


def test_through_the_shipyard_command_a_mistake_is_one_red_line(home: Path) -> None:
    import os
    import subprocess
    import sys

    adder(1)
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "pipeline", "runs", "describe", "nope"],
        env={**os.environ, "SHIPYARD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: No pipeline run with id 'nope'. "
        "See `shipyard pipeline runs list` for the runs there are."
    )


@step
def fetch(uri: str) -> str:
    raise ValueError(f"cannot fetch {uri}")


@pipeline
def fetcher(uri: str) -> None:
    fetch(uri)


def test_credentials_in_params_and_errors_are_masked(home: Path) -> None:
    with pytest.raises(PipelineRunFailedError) as caught:
        fetcher("https://bob:Pipeline-pw-77@models.example/m.onnx?token=Tok-88")
    run_id = caught.value.run.id
    described = _invoke("runs", "describe", run_id, "--output", "json")
    table = _invoke("runs", "describe", run_id)
    listed = _invoke("runs", "list", "--output", "json")
    for shown in (described, table, listed):
        assert "Pipeline-pw-77" not in shown and "Tok-88" not in shown
    assert "https://***@models.example/m.onnx?token=***" in described
    assert "https://***@models.example" in table
