"""``shipyard stack register|list|describe|set|delete``."""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli._shared import OutputFormat, OutputOption, open_store, print_json, print_table
from shipyard.errors import StackError

__all__ = ["stack"]

stack = typer.Typer(help="Manage stacks: one component of each type; one stack is active.")


@stack.command("register")
def register(
    name: str = typer.Argument(..., help="Name of the new stack."),
    artifact_store: str = typer.Option(..., "--artifact-store", "-a", help="Artifact store."),
    orchestrator: str = typer.Option(..., "--orchestrator", "-o", help="Orchestrator."),
    model_deployer: str | None = typer.Option(
        None, "--model-deployer", "-d", help="Model deployer."
    ),
    set_active: bool = typer.Option(False, "--set", help="Make it the active stack."),
) -> None:
    """Register a stack from registered components."""
    from shipyard.stack import ComponentType, register_stack

    with open_store() as store:
        register_stack(
            store,
            name,
            {
                ComponentType.ARTIFACT_STORE: artifact_store,
                ComponentType.ORCHESTRATOR: orchestrator,
                ComponentType.MODEL_DEPLOYER: model_deployer,
            },
            activate=set_active,
        )
    typer.echo(f"Registered stack '{name}'" + (" and made it active." if set_active else "."))


@stack.command("list")
def list_(output: OutputFormat = OutputOption) -> None:
    """List stacks; the active one is marked."""
    from rich.table import Table

    with open_store() as store:
        active = store.get_active_stack_name()
        rows: list[dict[str, Any]] = [
            {
                "name": record.name,
                "id": record.id,
                "active": record.name == active,
                "components": {t: c.name for t, c in sorted(record.components.items())},
            }
            for record in store.list_stacks()
        ]
    if output is OutputFormat.json:
        print_json(rows)
        return
    table = Table(title="Stacks")
    for column in ("active", "name", "artifact store", "orchestrator", "model deployer"):
        table.add_column(column.upper())
    for row in rows:
        parts = row["components"]
        table.add_row(
            "👉" if row["active"] else "",
            row["name"],
            parts.get("artifact_store", ""),
            parts.get("orchestrator", ""),
            parts.get("model_deployer", ""),
        )
    print_table(table)


@stack.command("describe")
def describe(
    name: str | None = typer.Argument(None, help="Stack to show; default the active one."),
    output: OutputFormat = OutputOption,
) -> None:
    """Show a stack's components."""
    from rich.table import Table

    with open_store() as store:
        active = store.get_active_stack_name()
        name = name or active
        record = store.get_stack(name) if name else None
        if record is None:
            raise StackError(f"No stack named '{name}'. See `shipyard stack list`.")
    data: dict[str, Any] = {
        "name": record.name,
        "id": record.id,
        "active": record.name == active,
        "components": {
            t: {"name": c.name, "flavor": c.flavor, "id": c.id}
            for t, c in sorted(record.components.items())
        },
    }
    if output is OutputFormat.json:
        print_json(data)
        return
    marker = " (active)" if data["active"] else ""
    table = Table(title=f"Stack '{record.name}'{marker}")
    for column in ("component type", "name", "flavor"):
        table.add_column(column.upper())
    for type_, component in data["components"].items():
        table.add_row(type_.replace("_", " "), component["name"], component["flavor"])
    print_table(table)


@stack.command("set")
def set_(name: str = typer.Argument(..., help="Stack to activate.")) -> None:
    """Make a stack the active one."""
    with open_store() as store:
        store.set_active_stack(name)
    typer.echo(f"Active stack: '{name}'.")


@stack.command("delete")
def delete(name: str = typer.Argument(..., help="Stack to delete (not the active one).")) -> None:
    """Delete a stack; its components stay registered."""
    with open_store() as store:
        store.delete_stack(name)
    typer.echo(f"Deleted stack '{name}'.")
