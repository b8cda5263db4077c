"""``shipyard secret create|list|delete``: values go in, only names and dates come out."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from shipyard.cli._shared import OutputFormat, OutputOption, open_store, print_json, print_table
from shipyard.errors import SecretError

__all__ = ["secret"]

secret = typer.Typer(
    help="Manage secrets (encrypted at rest; referenced in configs as {{secret.NAME}}).",
    no_args_is_help=True,
)


def _read_value(value: str | None, from_file: Path | None, name: str) -> str:
    if value is not None and from_file is not None:
        raise SecretError("Give the value with --value or --from-file, not both.")
    if from_file is not None:
        try:
            text = from_file.expanduser().read_text()
        except OSError as err:
            raise SecretError(f"Cannot read the value of '{name}' from {from_file}: {err}") from err
        return text.removesuffix("\n")
    if value is not None:
        return value
    if sys.stdin.isatty():
        # Typed, not echoed: the value never reaches the terminal's scrollback.
        return str(typer.prompt(f"Value of '{name}'", hide_input=True))
    return sys.stdin.read().removesuffix("\n")


@secret.command("create")
def create(
    name: str = typer.Argument(..., help="Name of the secret (letters, digits, - _ .)."),
    value: str | None = typer.Option(
        None, "--value", "-v", help="The value (visible in `ps` and shell history: prefer stdin)."
    ),
    from_file: Path | None = typer.Option(None, "--from-file", help="Read the value from a file."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing secret."),
) -> None:
    """Store a secret; without --value/--from-file it is read from stdin."""
    from shipyard.secrets import SecretStore, check_name, reference

    check_name(name)
    text = _read_value(value, from_file, name)
    with open_store() as store:
        SecretStore(store).set(name, text, replace=replace)
    typer.echo(f"Stored the secret '{name}'; refer to it as {reference(name)}.")


@secret.command("list")
def list_(output: OutputFormat = OutputOption) -> None:
    """List secrets: names and dates, never values."""
    from rich.table import Table

    from shipyard.secrets import SecretStore

    with open_store() as store:
        infos = SecretStore(store).list()
    rows = [info.model_dump(mode="json") for info in infos]
    if output is OutputFormat.json:
        print_json(rows)
        return
    table = Table(title="Secrets")
    for column in ("name", "created", "updated"):
        table.add_column(column.upper())
    for row in rows:
        table.add_row(row["name"], str(row["created"] or ""), str(row["updated"] or ""))
    print_table(table)


@secret.command("delete")
def delete(name: str = typer.Argument(..., help="The secret to delete.")) -> None:
    """Delete a secret (configs that refer to it then fail to resolve, naming it)."""
    from shipyard.secrets import SecretStore

    with open_store() as store:
        SecretStore(store).delete(name)
    typer.echo(f"Deleted the secret '{name}'.")
