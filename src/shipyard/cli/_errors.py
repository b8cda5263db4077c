"""One red line per user mistake; the traceback only with ``--debug``."""

from __future__ import annotations

import os
import traceback

from shipyard.errors import ShipyardError

_debug = bool(os.environ.get("SHIPYARD_DEBUG"))


def set_debug(value: bool) -> None:
    global _debug
    _debug = _debug or value


def report(err: ShipyardError) -> int:
    """Print ``err`` for a person and return the process exit code."""
    if _debug:
        traceback.print_exception(err)
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/] {escape(str(err))}"
    )
    return 1
