"""One red line per user mistake; the traceback only with ``--debug``."""

from __future__ import annotations

import os
import sys
import traceback

import click

from shipyard.errors import ShipyardError

_debug = bool(os.environ.get("SHIPYARD_DEBUG"))

HANDLED = (ShipyardError, click.ClickException, click.exceptions.Exit, click.Abort)


def set_debug(value: bool) -> None:
    global _debug
    _debug = _debug or value


def report(err: BaseException) -> int:
    """Print ``err`` for a person and return the process exit code."""
    if isinstance(err, click.exceptions.Exit):
        return err.exit_code
    if isinstance(err, click.Abort):
        sys.stderr.write("Aborted.\n")
        return 1
    if isinstance(err, click.ClickException):
        err.show()
        return err.exit_code
    if _debug:
        traceback.print_exception(err)
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/] {escape(str(err))}"
    )
    return 1
