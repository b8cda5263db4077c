"""``deploy``'s progress (a Rich status line on a terminal) and what a Ctrl-C left."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.deployers.base import ModelDeployer

__all__ = ["deploy_progress", "interrupted_state"]


@contextlib.contextmanager
def deploy_progress(enabled: bool) -> Iterator[Callable[[str], object] | None]:
    """A phase reporter for ``ModelDeployer.progress``: on a terminal, a spinner with the
    phase under way and a line per phase done (on stderr, so stdout stays the result);
    None (quiet) when ``enabled`` is false or stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False)
    current: list[str] = []

    with console.status("preparing the deploy", spinner="dots") as status:

        def report(phase: str) -> None:
            if current:
                console.print(f"[green]✓[/] {escape(current[-1])}")
            current.append(phase)
            status.update(escape(phase))

        yield report
        if current:  # the last phase ended with the deploy
            console.print(f"[green]✓[/] {escape(current[-1])}")


def interrupted_state(deployer: ModelDeployer, model_name: str) -> str:
    """After Ctrl-C during a deploy: which servers of ``model_name`` there are now and
    what each serves (finding them reconciles an interrupted change first)."""
    servers = deployer.find_model_server(model_name=model_name)
    if not servers:
        return (
            f"Interrupted: no model server serves '{model_name}'; the one being started "
            "was stopped and removed. Run the deploy again."
        )
    lines = []
    for server in servers:
        line = (
            f"Interrupted: model server {server.uuid} is {server.status.state.value} and "
            f"serves {server.config.model_uri}"
        )
        if server.intent is not None:
            line += f"; a change is still settling ({server.intent.describe()})"
        elif server.status.last_error:
            line += f" ({server.status.last_error})"
        lines.append(line + ".")
    return "\n".join(lines)
