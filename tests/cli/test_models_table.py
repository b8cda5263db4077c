"""`models list` as a table: readable on an 80-column terminal (and when not a TTY)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.deployers.local import LocalModelDeployer, LocalModelServer, LocalModelServerConfig

from .conftest import ok

_NAMES = ("continuous_training_pipeline", "model_deployer_step", "breast-cancer-classifier")


def _registered(home: Path) -> LocalModelServer:
    """A server in the registry that was never started (no process needed to list it)."""
    pipeline, step, model = _NAMES
    deployer = LocalModelDeployer.get_active_model_deployer()
    service = LocalModelServer(
        flavor="local",
        config=LocalModelServerConfig(
            model_uri=str(home / "m"),
            model_name=model,
            pipeline_name=pipeline,
            pipeline_step_name=step,
        ),
    )
    deployer.register_service(service)
    return service


def _cells(output: str) -> str:
    """The table's text with the borders and wrapping removed, cell by cell per column."""
    lines = [line for line in output.splitlines() if line.startswith("│")]
    columns: list[str] = []
    for line in lines:
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        columns.extend([""] * (len(cells) - len(columns)))
        columns = [c + cell for c, cell in zip(columns, cells, strict=True)]
    return "\n".join(columns)


def test_an_80_column_table_keeps_the_names_whole(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _registered(home)
    monkeypatch.setenv("COLUMNS", "80")
    output = ok("model-deployer", "models", "list")
    assert all(len(line) <= 80 for line in output.splitlines()), output
    assert "…" not in output, output
    cells = _cells(output)
    for name in _NAMES:
        assert name in cells, output
    # The short UUID is a prefix every command accepts; the full one is in describe.
    assert service.uuid[:8] in output and service.uuid not in output
    assert service.uuid in ok("model-deployer", "models", "describe", service.uuid[:8])


def test_a_wide_table_shows_whole_uuids(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _registered(home)
    monkeypatch.setenv("COLUMNS", "160")
    output = ok("model-deployer", "models", "list")
    assert service.uuid in output and "…" not in output


def test_servers_of_other_deployers_are_hinted_and_keep_theirs(home: Path) -> None:
    from shipyard.errors import StackError

    from .conftest import invoke

    ok("model-deployer", "register", "md2", "--flavor=local")
    ok(
        "stack",
        "register",
        "s2",
        "-a",
        "default",
        "--orchestrator",
        "default",
        "-d",
        "md2",
        "--set",
    )
    service = _registered(home)  # under md2
    ok("stack", "set", "default")
    assert ok("model-deployer", "models", "list").strip() == (
        "No model servers for the model deployer 'default'. 1 more belong to other model "
        "deployers: `shipyard stack set` a stack that has theirs to see them."
    )
    assert ok("model-deployer", "models", "list", "--model", "x").startswith(
        "No model servers match."
    )
    # md2 cannot be deleted while it has a model server: nothing could reach it after.
    ok("stack", "delete", "s2")
    refused = invoke("model-deployer", "delete", "md2")
    assert isinstance(refused.exception, StackError)
    assert f"'md2' still has 1 model server(s) ({service.uuid[:8]})" in str(refused.exception)


def test_an_empty_uuid_prefix_matches_nothing(home: Path) -> None:
    from shipyard.errors import ServiceNotFoundError

    from .conftest import invoke

    _registered(home)
    for command in ("describe", "delete"):
        result = invoke("model-deployer", "models", command, "")
        assert isinstance(result.exception, ServiceNotFoundError), result.output
        assert "Give a model server UUID" in str(result.exception)


def test_a_negative_tail_is_refused(home: Path) -> None:
    from .conftest import invoke

    service = _registered(home)
    result = invoke("model-deployer", "models", "logs", service.uuid, "--tail", "-5")
    assert result.exit_code == 2
    assert "Invalid value for '--tail'" in result.output
