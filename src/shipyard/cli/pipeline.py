"""``shipyard pipeline runs list|describe``: what pipelines ran, and what each step did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from shipyard.cli._shared import OutputFormat, OutputOption, open_store, print_json, print_table

if TYPE_CHECKING:
    from shipyard.pipelines import PipelineRunView, StepRunView

__all__ = ["pipeline"]

pipeline = typer.Typer(help="Inspect pipeline runs: steps, statuses, outputs, deployed servers.")
runs = typer.Typer(help="Runs of pipelines, newest first.")
pipeline.add_typer(runs, name="runs")

_ICONS = {
    "completed": "[green]✔[/]",
    "cached": "[cyan]↺[/]",
    "running": "[yellow]⏵[/]",
    "failed": "[red]✘[/]",
    "skipped": "[dim]-[/]",
}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def _service_of(step: StepRunView) -> dict[str, Any] | None:
    for artifact in step.outputs.values():
        if artifact.materializer == "service":
            return {
                "uuid": artifact.summary.get("uuid"),
                "prediction_url": artifact.summary.get("prediction_url"),
            }
    return None


def _step_json(step: StepRunView) -> dict[str, Any]:
    return {
        "id": step.id,
        "name": step.name,
        "status": step.status.value,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "duration_s": step.duration,
        "cached_from": step.cached_from,
        "params": step.params,
        "inputs": step.inputs,
        "outputs": {
            name: {
                "uri": a.uri,
                "materializer": a.materializer,
                "data_type": a.data_type,
                "content_hash": a.content_hash,
                "summary": a.summary,
            }
            for name, a in step.outputs.items()
        },
        "metadata": step.metadata,
        "service": _service_of(step),
        "error": step.error,
    }


def _run_json(run: PipelineRunView, with_steps: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": run.id,
        "pipeline_name": run.pipeline_name,
        "status": run.status.value,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_s": run.duration,
        "metadata": run.metadata,
        "error": run.error,
    }
    if with_steps:
        data["steps"] = [_step_json(step) for step in run.steps.values()]
    else:
        data["steps"] = {step.name: step.status.value for step in run.steps.values()}
    return data


def _output_text(step: StepRunView) -> str:
    from rich.markup import escape

    parts = []
    for name, artifact in step.outputs.items():
        summary = ", ".join(f"{k}={v}" for k, v in artifact.summary.items())
        kind = artifact.data_type.rsplit(".", 1)[-1]
        parts.append(escape(f"{name}: {kind}" + (f" ({summary})" if summary else "")))
    return "\n".join(parts)


@runs.command("list")
def list_(
    pipeline_name: str | None = typer.Option(None, "--pipeline", "-p", help="Only this one."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs to show."),
    output: OutputFormat = OutputOption,
) -> None:
    """List pipeline runs, newest first, with each one's status and step counts."""
    from rich.markup import escape
    from rich.table import Table

    from shipyard.pipelines._runtime import open_records

    with open_store() as store:
        records = open_records(store)
        try:
            found = records.list_runs(pipeline_name, limit)
        finally:
            records.close()
    if output is OutputFormat.json:
        print_json([_run_json(run, with_steps=False) for run in found])
        return
    table = Table(title="Pipeline runs")
    for column in ("", "RUN ID", "PIPELINE", "STARTED (UTC)", "DURATION", "STEPS", "METADATA"):
        table.add_column(column)
    for run in found:
        counts: dict[str, int] = {}
        for step in run.steps.values():
            counts[step.status.value] = counts.get(step.status.value, 0) + 1
        table.add_row(
            _ICONS.get(run.status.value, run.status.value),
            run.id[:8],
            escape(run.pipeline_name),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            _seconds(run.duration),
            ", ".join(f"{n} {s}" for s, n in counts.items()),
            escape(", ".join(f"{k}={v}" for k, v in run.metadata.items())),
        )
    if not found:
        typer.echo("No pipeline runs yet. Run a @pipeline function to make one.")
        return
    print_table(table)


@runs.command("describe")
def describe(
    run_id: str = typer.Argument(..., metavar="RUN", help="Run id or an unambiguous prefix."),
    output: OutputFormat = OutputOption,
) -> None:
    """Show one run: each step's status, duration, outputs, and deployed server."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from shipyard.pipelines._runtime import open_records

    with open_store() as store:
        records = open_records(store)
        try:
            run = records.get_run(run_id)
        finally:
            records.close()
    if output is OutputFormat.json:
        print_json(_run_json(run, with_steps=True))
        return
    console = Console(soft_wrap=True)
    console.print(f"[bold]Run[/] {run.id}  {_ICONS.get(run.status.value, '')} {run.status.value}")
    console.print(f"Pipeline: {escape(run.pipeline_name)}")
    console.print(f"Started:  {run.started_at:%Y-%m-%d %H:%M:%S} UTC   {_seconds(run.duration)}")
    for key, value in run.metadata.items():
        console.print(f"{escape(key)}: {escape(str(value))}")
    if run.error:
        console.print(f"[red]Error:[/] {escape(run.error)}")
    table = Table(title="Steps")
    for column in ("", "STEP", "STATUS", "DURATION", "OUTPUTS", "SERVICE", "ERROR"):
        table.add_column(column)
    for step in run.steps.values():
        service = _service_of(step)
        table.add_row(
            _ICONS.get(step.status.value, ""),
            escape(step.name),
            step.status.value + (f" (from {step.cached_from[:8]})" if step.cached_from else ""),
            _seconds(step.duration),
            _output_text(step),
            escape(f"{service['uuid']}\n{service['prediction_url']}") if service else "",
            escape(step.error or ""),
        )
    print_table(table)
