"""One meaning per short flag across every command; -p/--port wherever a port is set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer


def _commands(command: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    # Duck-typed: Typer builds on its own copy of click's classes.
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}".strip())


def _app() -> Any:
    from shipyard.cli.main import app

    return typer.main.get_command(app)


def test_each_short_flag_means_one_thing() -> None:
    # A short flag's meaning is its long names; two uses agree when they share one
    # (serve's -p is --http-port and --port, deploy's -p is --port).
    meanings: dict[str, dict[frozenset[str], list[str]]] = {}
    commands = list(_commands(_app()))
    assert len(commands) > 30  # the walk reached the nested groups
    for path, command in commands:
        for param in command.params:
            if param.param_type_name != "option":
                continue
            longs = frozenset(o for o in param.opts if o.startswith("--"))
            for short in (o for o in param.opts if len(o) == 2):
                meanings.setdefault(short, {}).setdefault(longs, []).append(path)
    assert "-p" in meanings  # short flags were found
    clashes = {
        s: m for s, m in meanings.items() if any(a.isdisjoint(b) for a in m for b in m if a != b)
    }
    assert clashes == {}


def test_port_options_take_p() -> None:
    commands = dict(_commands(_app()))
    for path in ("serve", "deploy"):
        opts = {o for p in commands[path].params for o in p.opts}
        assert {"-p", "--port"} <= opts, path
