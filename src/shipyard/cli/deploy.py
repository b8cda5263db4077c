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
    resolve_uri_secrets,
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
    access_log: bool | None = typer.Option(
        None,
        "--access-log/--no-access-log",
        help="Log every request (method, path, status, latency); a redeploy keeps it.",
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
    if access_log is not None:
        values["access_log"] = access_log
    values.update(parse_key_values([f"--{item}" for item in settings]))
    if dry_run:
        with open_store() as store:
            manifests = active_model_deployer(store).render_deployment(values)
        print_manifests(manifests, output)
        return
    from shipyard.cli._progress import deploy_progress, interrupted_state

    try:
        with open_store() as store, deploy_progress(output is not OutputFormat.json) as report:
            deployer = active_model_deployer(store)
            if deployer.RESOLVES_SECRETS:
                # A whole-URI reference ('{{secret.NAME}}') becomes the URI here; the
                # deployer moves its credentials back into the secrets store before it
                # records anything, so argv and the registry hold references only.
                values["model_uri"] = resolve_uri_secrets(model_uri, store)
            deployer.progress = report
            service = deployer.deploy_model(values, replace=replace, timeout=timeout)
    except KeyboardInterrupt:
        # Ctrl-C: say what is running now (the interrupted change is reconciled first).
        with open_store() as store:
            state = interrupted_state(active_model_deployer(store), name)
        typer.echo(state, err=True)
        raise typer.Exit(130) from None
    if output is OutputFormat.json:
        print_json(service_row(service))
        return
    typer.echo(f"Model server {service.uuid} serves '{name}' at {service.prediction_url}")
    typer.echo(f"Stop it with: shipyard model-deployer models stop {service.uuid}")
