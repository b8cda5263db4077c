"""``shipyard deploy MODEL_URI --name NAME``: deploy through the active model deployer."""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli._shared import (
    OutputFormat,
    OutputOption,
    open_store,
    parse_key_values,
    print_json,
    print_manifests,
)

__all__ = ["deploy"]


def deploy(
    model_uri: str = typer.Argument(..., help="Model directory, file or URL."),
    name: str = typer.Option(..., "--name", help="Name the model is served under."),
    replace: bool = typer.Option(
        True, "--replace/--no-replace", help="Update a server of the same name in place."
    ),
    port: int | None = typer.Option(None, "--port", "-p", help="HTTP port (default: a free one)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for readiness."),
    settings: list[str] = typer.Option(
        [],
        "--set",
        help="A deployment config field, KEY=VALUE (repeatable), e.g. --set replicas=2.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be applied (Kubernetes: the manifests)."
    ),
    trust: bool = typer.Option(
        False, "--trust", help="Trust the model's code: load a pickle/joblib model from a URL."
    ),
    sha256: str | None = typer.Option(
        None, "--sha256", help="SHA-256 of the model's content: checked before loading."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Deploy a model with the active stack's model deployer."""
    from shipyard.cli._deployer import active_model_deployer, service_row

    values: dict[str, Any] = {"model_uri": model_uri, "model_name": name}
    if port is not None:
        values["port"] = port
    if workers is not None:
        values["workers"] = workers
    # Only when given: a flavor whose config has no such field is not bothered.
    if trust:
        values["trusted"] = True
    if sha256 is not None:
        values["sha256"] = sha256
    values.update(parse_key_values([f"--{item}" for item in settings]))
    if dry_run:
        with open_store() as store:
            manifests = active_model_deployer(store).render_deployment(values)
        print_manifests(manifests, output)
        return
    with open_store() as store:
        service = active_model_deployer(store).deploy_model(
            values, replace=replace, timeout=timeout
        )
    if output is OutputFormat.json:
        print_json(service_row(service))
        return
    typer.echo(f"Model server {service.uuid} serves '{name}' at {service.prediction_url}")
    typer.echo(f"Stop it with: shipyard model-deployer models stop {service.uuid}")
