"""``shipyard pipeline runs list|describe``: what pipelines ran, and what each step did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from shipyard._redact import mask_credentials, mask_nested
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


def _metadata_text(metadata: dict[str, Any], short: bool) -> str:
    """One line per key. A decision (a dict with ``deploy``/``reason``) shows as such."""
    import json

    lines = []
    for key, value in metadata.items():
        if isinstance(value, dict) and isinstance(value.get("deploy"), bool):
            verdict = "deploy" if value["deploy"] else "keep"
            metric = value.get("metric")
            if short:
                # A decision is what a reader scans the list for: no key, just the verdict.
                lines.append(f"{verdict} {metric:.4g}" if isinstance(metric, float) else verdict)
                continue
            text = value["reason"] if isinstance(value.get("reason"), str) else verdict
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        line = f"{key}: {text}"
        lines.append(line if not short or len(line) <= 40 else line[:39] + "…")
    return "\n".join(lines)


def _output_text(step: StepRunView) -> str:
    return "\n".join(
        f"{name}: {artifact.data_type.rsplit('.', 1)[-1]}"
        for name, artifact in step.outputs.items()
    )


@runs.command("list")
def list_(
    pipeline_name: str | None = typer.Option(None, "--pipeline", help="Only this one."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs to show."),
    output: OutputFormat = OutputOption,
) -> None:
    """List pipeline runs, newest first, with each one's status and step counts."""
    from rich.markup import escape
    from rich.table import Table

    from shipyard.pipelines._records import RunRecords

    with open_store() as store:
        found = RunRecords(store).list_runs(pipeline_name, limit)
    if output is OutputFormat.json:
        print_json(mask_nested([_run_json(run, with_steps=False) for run in found]))
        return
    table = Table(title="Pipeline runs")
    for column in ("", "RUN ID", "STARTED (UTC)", "DURATION", "STEPS"):
        table.add_column(column, no_wrap=True)
    table.add_column("PIPELINE", overflow="fold")
    table.add_column("METADATA")
    for run in found:
        counts: dict[str, int] = {}
        for step in run.steps.values():
            counts[step.status.value] = counts.get(step.status.value, 0) + 1
        table.add_row(
            _ICONS.get(run.status.value, run.status.value),
            run.id[:8],
            run.started_at.strftime("%m-%d %H:%M:%S"),
            _seconds(run.duration),
            " ".join(f"{_ICONS.get(status, status)}{n}" for status, n in counts.items()),
            escape(run.pipeline_name),
            escape(_metadata_text(mask_nested(run.metadata), short=True)),
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

    from shipyard.pipelines._records import RunRecords

    with open_store() as store:
        run = RunRecords(store).get_run(run_id)
    if output is OutputFormat.json:
        print_json(mask_nested(_run_json(run, with_steps=True)))
        return
    console = Console(soft_wrap=True)
    console.print(f"[bold]Run[/] {run.id}  {_ICONS.get(run.status.value, '')} {run.status.value}")
    console.print(f"Pipeline: {escape(run.pipeline_name)}")
    console.print(f"Started:  {run.started_at:%Y-%m-%d %H:%M:%S} UTC   {_seconds(run.duration)}")
    if run.metadata:
        console.print(escape(_metadata_text(mask_nested(run.metadata), short=False)))
    if run.error:
        console.print(f"[red]Error:[/] {escape(mask_credentials(run.error))}")
    table = Table(title="Steps")
    for column in ("", "STEP", "STATUS", "DURATION"):
        table.add_column(column, no_wrap=True)
    table.add_column("OUTPUTS")
    notes: list[str] = []
    for step in run.steps.values():
        cached = f" (from {step.cached_from[:8]})" if step.cached_from else ""
        table.add_row(
            _ICONS.get(step.status.value, ""),
            escape(step.name),
            step.status.value + cached,
            _seconds(step.duration),
            escape(_output_text(step)),
        )
        service = _service_of(step)
        if service is not None:
            notes.append(
                f"[bold]{escape(step.name)}[/] model server {service['uuid']} "
                f"at {escape(str(service['prediction_url']))}"
            )
        if step.error:
            notes.append(
                f"[red]{escape(step.name)} failed:[/] {escape(mask_credentials(step.error))}"
            )
    print_table(table)
    for note in notes:
        console.print(note)
