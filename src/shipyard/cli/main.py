"""Entry point of the ``shipyard`` command: assembles the command groups.

Each group lives in its own module and imports heavy libraries only inside its
commands, so ``shipyard --help`` starts fast.
"""

from __future__ import annotations

import sys

import typer

from shipyard import __version__
from shipyard.cli import _errors
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="Deploy trained models as fast HTTP/gRPC servers and run batch inference.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _errors.set_debug(debug)


def _register() -> None:
    # Imported here, not at module top, so a broken optional group cannot break `--help`
    # of the others during development and so tests can build a fresh app.
    from shipyard.cli import commands

    commands.register(app)


_register()


def main() -> None:
    """Run the CLI; a user's mistake prints one red line, not a traceback."""
    # Typer/Click report usage errors themselves (standalone mode); ours are caught here.
    try:
        try:
            app()
        except ShipyardError as err:
            sys.exit(_errors.report(err))
    except SystemExit as end:
        # A command that made this process a Ray driver (``--engine ray``) ends it here,
        # without the seconds of Ray's teardown.
        from shipyard._ray.connect import end_driver_process

        end_driver_process(end.code)
        raise


if __name__ == "__main__":
    main()
