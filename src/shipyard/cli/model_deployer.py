"""``shipyard model-deployer ...``: the component commands plus ``models`` (the servers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from shipyard._redact import mask_credentials
from shipyard.cli._shared import OutputFormat, OutputOption, open_store, print_json, print_table
from shipyard.cli.components import make_component_app
from shipyard.errors import ServiceError

if TYPE_CHECKING:
    from shipyard.services import Service
    from shipyard.store import Store

__all__ = ["model_deployer"]

model_deployer = make_component_app("model_deployer")
models = typer.Typer(help="Model servers of the active model deployer.", no_args_is_help=True)
model_deployer.add_typer(models, name="models")

_UUID = typer.Argument(
    ..., help="Model name, or UUID of the model server (a unique prefix will do)."
)
_TIMEOUT = typer.Option(60.0, "--timeout", "-t", help="Seconds to wait.")
#: Terminal width from which `models list` shows whole UUIDs.
_FULL_UUID_WIDTH = 110


@models.command("list")
def list_(
    pipeline: str | None = typer.Option(None, "--pipeline", help="Pipeline name."),
    step: str | None = typer.Option(None, "--step", "-s", help="Pipeline step name."),
    run: str | None = typer.Option(None, "--run", "-r", help="Pipeline run id."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name."),
    running: bool = typer.Option(False, "--running", help="Only servers that are running."),
    output: OutputFormat = OutputOption,
) -> None:
    """List model servers (status checked now)."""
    from rich.table import Table

    from shipyard.cli._deployer import active_model_deployer, service_row
    from shipyard.services import ServiceState

    with open_store() as store:
        deployer = active_model_deployer(store)
        services = deployer.find_model_server(
            pipeline_name=pipeline,
            pipeline_step_name=step,
            pipeline_run_id=run,
            model_name=model,
            running=True if running else None,
        )
        elsewhere = 0 if services else _under_other_deployers(store, deployer.id)
    rows = [service_row(service) for service in services]
    if output is OutputFormat.json:
        print_json(rows)
        return
    if not rows:
        filtered = any((pipeline, step, run, model, running))
        message = (
            "No model servers match."
            if filtered
            else f"No model servers for the model deployer '{deployer.name}'."
        )
        if elsewhere:
            message += (
                f" {elsewhere} more belong to other model deployers: "
                "`shipyard stack set` a stack that has theirs to see them."
            )
        typer.echo(message)
        return
    from rich.console import Console

    # As in the docs: status, UUID, flavor, pipeline, step, model, and the URL to call.
    # On a narrow terminal (80 columns, or not a TTY) the full UUID would squeeze the
    # names to a few letters: show its first 8 characters (any unique prefix is accepted;
    # `describe` and `--output json` give the full one) and wrap long names, never cut them.
    short = Console().width < _FULL_UUID_WIDTH
    table = Table(title="Model servers")
    table.add_column("", no_wrap=True)
    table.add_column("UUID", no_wrap=True, min_width=8 if short else 36)
    table.add_column("FLAVOR", overflow="fold")
    for column in ("pipeline", "step", "model", "url"):
        table.add_column(column.upper(), overflow="fold")
    versions = any(row["model_version"] for row in rows)
    if versions:  # only flavors that resolve a version (mlflow's registry) add the column
        table.add_column("VERSION", overflow="fold")
    for row in rows:
        table.add_row(
            ServiceState(row["state"]).icon,
            row["uuid"][:8] if short else row["uuid"],
            row["flavor"],
            row["pipeline_name"],
            row["pipeline_step_name"],
            row["model_name"],
            row.get("prediction_url") or "",
            *([row["model_version"]] if versions else []),
        )
    print_table(table)


def _under_other_deployers(store: Store, deployer_id: str) -> int:
    return sum(1 for record in store.find_services() if record.deployer_id != deployer_id)


@models.command("describe")
def describe(uuid: str = _UUID, output: OutputFormat = OutputOption) -> None:
    """Show a model server: status, last error, config and URLs (no secrets)."""
    from rich.table import Table

    from shipyard.cli._deployer import named_server, service_summary

    with named_server(uuid) as (deployer, full):
        server = deployer.get_model_server(full)
        summary = service_summary(deployer, server)
    if output is OutputFormat.json:
        print_json(summary)
        return
    table = Table(title=f"Model server {summary['uuid']}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    keys = [
        "uuid",
        "flavor",
        "state",
        "admin_state",
        "pending_change",
        "last_error",
        "prediction_url",
    ]
    for key in keys + (["model_version"] if summary["model_version"] else []):
        table.add_row(key, str(summary[key] or ""))
    for key, value in summary["config"].items():
        table.add_row(f"config.{key}", "" if value is None else str(value))
    for key, value in summary["info"].items():
        table.add_row(key, "" if value is None else str(value))
    print_table(table)


@models.command("get-url")
def get_url(uuid: str = _UUID, output: OutputFormat = OutputOption) -> None:
    """Print the model server's prediction URL."""
    from shipyard.cli._deployer import named_server

    with named_server(uuid) as (deployer, full):
        service = deployer.get_model_server(full)
    if service.prediction_url is None:
        raise ServiceError(
            f"The model server {service.uuid} has no URL yet; start it with "
            f"`shipyard model-deployer models start {service.uuid}`."
        )
    host = getattr(service, "host_header", None)
    if output is OutputFormat.json:
        shown = {"uuid": service.uuid, "prediction_url": service.prediction_url}
        print_json({**shown, "host_header": host} if host else shown)
        return
    typer.echo(service.prediction_url)
    if host:
        # On stderr, so `$(shipyard ... get-url)` stays the URL alone.
        typer.echo(f"Send it with the header 'Host: {host}' (the ingress routes on it).", err=True)


def _state_json(service: Service, **extra: object) -> None:
    print_json(
        {
            "uuid": service.uuid,
            "state": service.status.state.value,
            "prediction_url": service.prediction_url,
            "last_error": mask_credentials(service.status.last_error),
            **extra,
        }
    )


@models.command("start")
def start(
    uuid: str = _UUID, timeout: float = _TIMEOUT, output: OutputFormat = OutputOption
) -> None:
    """Start a stopped model server (same port, same URL)."""
    from shipyard.cli._deployer import named_server

    with named_server(uuid) as (deployer, full):
        service = deployer.start_model_server(full, timeout=timeout)
    if output is OutputFormat.json:
        _state_json(service)
        return
    typer.echo(f"Model server {service.uuid} is running at {service.prediction_url}")


@models.command("stop")
def stop(
    uuid: str = _UUID,
    timeout: float = _TIMEOUT,
    force: bool = typer.Option(False, "--force", help="Kill without draining."),
    output: OutputFormat = OutputOption,
) -> None:
    """Stop a model server; in-flight requests finish unless --force."""
    from shipyard.cli._deployer import named_server

    with named_server(uuid) as (deployer, full):
        service = deployer.stop_model_server(full, timeout=timeout, force=force)
    if output is OutputFormat.json:
        _state_json(service, unrecorded=service.unrecorded or None)
        return
    typer.echo(f"Model server {service.uuid} stopped.")
    if service.unrecorded:
        typer.echo(
            f"Warning: the registry could not record it ({service.unrecorded}); the next "
            "command that can write will.",
            err=True,
        )


@models.command("delete")
def delete(
    uuid: str = _UUID,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    timeout: float = _TIMEOUT,
    force: bool = typer.Option(False, "--force", help="Kill without draining."),
    output: OutputFormat = OutputOption,
) -> None:
    """Stop a model server and remove it from the registry."""
    from shipyard.cli._deployer import named_server

    with named_server(uuid) as (deployer, full):
        if not yes:
            typer.confirm(f"Delete the model server {full}?", abort=True)
        deployer.delete_model_server(full, timeout=timeout, force=force)
    if output is OutputFormat.json:
        print_json({"uuid": full, "deleted": True})
        return
    typer.echo(f"Model server {full} deleted.")


@models.command("logs")
def logs(
    uuid: str = _UUID,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int | None = typer.Option(None, "--tail", "-n", min=0, help="Only the last N lines."),
    output: OutputFormat = OutputOption,
) -> None:
    """Print a model server's log (``-O json``: one ``{"uuid", "line"}`` object a line)."""
    from shipyard.cli._deployer import named_server

    with named_server(uuid) as (deployer, full):
        lines = deployer.get_model_server_logs(full, follow=follow, tail=tail)
    try:
        for line in lines:
            if output is OutputFormat.json:
                typer.echo(json.dumps({"uuid": full, "line": line}))
            else:
                typer.echo(line)
    except KeyboardInterrupt:
        pass
