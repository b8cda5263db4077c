"""``shipyard artifact-store|orchestrator|model-deployer register|list|describe|update|delete``.

One factory builds the same command shape for every component type.
"""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli._shared import (
    EXTRA_ARGS,
    OutputFormat,
    OutputOption,
    mask_secrets,
    open_store,
    parse_key_values,
    print_json,
    print_table,
)
from shipyard.errors import ShipyardError, StackError

__all__ = ["artifact_store", "make_component_app", "orchestrator"]


def _shown_config(registry: Any, type_: Any, flavor: str, raw: dict[str, Any]) -> Any:
    """The config as people may see it: validated, defaults filled, secrets masked."""
    try:
        config = registry.get(type_, flavor).validate_config(raw)
    except ShipyardError:
        return mask_secrets(raw)
    return config.model_dump(mode="json")


def _warn_if_typed(given: dict[str, Any], stored: dict[str, Any]) -> None:
    """A secret field given its value on the command line: it is stored encrypted now,
    but `ps` and the shell history saw it; say how to avoid that next time."""
    from shipyard.secrets import has_references

    typed = sorted(
        key
        for key, value in given.items()
        if isinstance(value, str)
        and not has_references(value)
        and isinstance(stored.get(key), str)
        and has_references(stored[key])
    )
    if typed:
        options = ", ".join(f"--{key}" for key in typed)
        typer.echo(
            f"Note: {options} was typed on the command line, where `ps` and the shell "
            "history see it (it is stored encrypted now). Next time store it with "
            f"`shipyard secret create NAME` (reads stdin) and pass --{typed[0]}="
            "{{secret.NAME}}.",
            err=True,
        )


def make_component_app(type_name: str) -> typer.Typer:
    """The command group for one component type (``"model_deployer"``, ...).

    Takes the type's name, not the enum, so that building the CLI imports no pydantic.
    """
    label = type_name.replace("_", " ")
    cli_name = type_name.replace("_", "-")

    def component_type() -> Any:
        from shipyard.stack import ComponentType

        return ComponentType(type_name)

    app = typer.Typer(help=f"Manage {label}s.", no_args_is_help=True)
    flavor_app = typer.Typer(help=f"{label.capitalize()} flavors.", no_args_is_help=True)
    app.add_typer(flavor_app, name="flavor")

    @app.command("register", context_settings=EXTRA_ARGS)
    def register(
        ctx: typer.Context,
        name: str = typer.Argument(..., help=f"Name of the new {label}."),
        flavor: str = typer.Option(..., "--flavor", help="Flavor to instantiate."),
        source: str | None = typer.Option(
            None, "--source", help="Register a custom flavor first, from module:Class."
        ),
    ) -> None:
        """Register a component; its config as --key=value options."""
        from shipyard.stack import FlavorRegistry, register_component

        type_ = component_type()
        values = parse_key_values(ctx.args)
        with open_store() as store:
            registry = FlavorRegistry(store)
            if source:
                custom = registry.register_source(source, type_)
                if custom.name != flavor:
                    raise StackError(
                        f"'{source}' is the flavor '{custom.name}', not '{flavor}'; "
                        f"use --flavor={custom.name}."
                    )
            record = register_component(store, registry, type_, name, flavor, values)
        typer.echo(f"Registered {label} '{name}' (flavor {flavor}).")
        _warn_if_typed(values, record.configuration)

    @app.command("update", context_settings=EXTRA_ARGS)
    def update(
        ctx: typer.Context, name: str = typer.Argument(..., help=f"The {label} to change.")
    ) -> None:
        """Change a component's config with --key=value options."""
        from shipyard.stack import FlavorRegistry, update_component

        values = parse_key_values(ctx.args)
        with open_store() as store:
            record = update_component(store, FlavorRegistry(store), component_type(), name, values)
        typer.echo(f"Updated {label} '{name}'.")
        _warn_if_typed(values, record.configuration)

    @app.command("list")
    def list_(output: OutputFormat = OutputOption) -> None:
        """List the registered components of this type."""
        from rich.table import Table

        from shipyard.stack import FlavorRegistry

        with open_store() as store:
            registry = FlavorRegistry(store)
            active = store.get_active_stack_name()
            stack = store.get_stack(active) if active else None
            in_use = stack.components.get(type_name) if stack else None
            rows = [
                {
                    "name": record.name,
                    "id": record.id,
                    "flavor": record.flavor,
                    "active": in_use is not None and in_use.id == record.id,
                    "config": _shown_config(
                        registry, component_type(), record.flavor, record.configuration
                    ),
                }
                for record in store.list_components(type_name)
            ]
        if output is OutputFormat.json:
            print_json(rows)
            return
        table = Table(title=f"{label.capitalize()}s")
        for column in ("active", "name", "flavor", "id"):
            table.add_column(column.upper())
        for row in rows:
            table.add_row("👉" if row["active"] else "", row["name"], row["flavor"], row["id"])
        print_table(table)

    @app.command("describe")
    def describe(
        name: str = typer.Argument(..., help=f"The {label} to show."),
        output: OutputFormat = OutputOption,
    ) -> None:
        """Show a component's flavor and config (secrets masked)."""
        from rich.table import Table

        from shipyard.stack import FlavorRegistry

        with open_store() as store:
            record = store.get_component(name, type_name)
            if record is None:
                raise StackError(f"No {label} named '{name}'. See `shipyard {cli_name} list`.")
            config = _shown_config(
                FlavorRegistry(store), component_type(), record.flavor, record.configuration
            )
        data = {"name": record.name, "id": record.id, "type": type_name, "flavor": record.flavor}
        if output is OutputFormat.json:
            print_json({**data, "config": config})
            return
        table = Table(title=f"{label.capitalize()} '{name}'", show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value")
        for key, value in data.items():
            table.add_row(key, str(value))
        for key, value in config.items():
            table.add_row(f"config.{key}", str(value))
        print_table(table)

    @app.command("delete")
    def delete(name: str = typer.Argument(..., help=f"The {label} to delete.")) -> None:
        """Delete a component that no stack uses."""
        with open_store() as store:
            store.delete_component(name, type_name)
        typer.echo(f"Deleted {label} '{name}'.")

    @flavor_app.command("list")
    def flavor_list(output: OutputFormat = OutputOption) -> None:
        """List the flavors of this component type."""
        from rich.table import Table

        from shipyard.stack import FlavorRegistry

        with open_store() as store:
            flavors = FlavorRegistry(store).list(component_type())
        rows = [{"name": f.name, "origin": f.origin, "description": f.description} for f in flavors]
        if output is OutputFormat.json:
            print_json(rows)
            return
        table = Table(title=f"{label.capitalize()} flavors")
        for column in ("name", "origin", "description"):
            table.add_column(column.upper())
        for row in rows:
            table.add_row(row["name"], row["origin"], row["description"])
        print_table(table)

    @flavor_app.command("register")
    def flavor_register(
        source: str = typer.Argument(..., help="module:Class of the custom flavor."),
    ) -> None:
        """Register a custom flavor from an importable module:Class."""
        from shipyard.stack import FlavorRegistry

        with open_store() as store:
            flavor = FlavorRegistry(store).register_source(source, component_type())
        typer.echo(f"Registered {label} flavor '{flavor.name}' from {source}.")

    return app


artifact_store = make_component_app("artifact_store")
orchestrator = make_component_app("orchestrator")
