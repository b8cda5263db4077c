"""``shipyard batch predict``: batch inference from the command line."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated

import typer

from shipyard.errors import ServiceError, ServiceNotFoundError

__all__ = ["batch"]

batch = typer.Typer(
    name="batch",
    help="Batch inference: predictions for large data sets, resumable.",
    no_args_is_help=True,
)


@batch.callback()
def _group() -> None:
    """Batch inference: predictions for large data sets, resumable."""


class _Format(enum.StrEnum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


class _Engine(enum.StrEnum):
    local = "local"
    ray = "ray"


class _OnError(enum.StrEnum):
    fail = "fail"
    skip = "skip"


class _InputAs(enum.StrEnum):
    auto = "auto"
    numpy = "numpy"
    dict = "dict"
    pandas = "pandas"


def _split(values: list[str] | None) -> list[str] | None:
    """Accept both ``--columns a b`` style repeats and ``--columns a,b``."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _resolve_service(value: str) -> object:
    """A URL as it is; a name or UUID looked up in the active stack's model deployer."""
    if value.startswith(("http://", "https://")):
        return value
    from shipyard.deployers.base import ModelDeployer

    deployer = ModelDeployer.get_active_model_deployer()
    try:
        service = deployer.get_model_server(value)
    except ServiceNotFoundError:
        found = deployer.find_model_server(model_name=value)
        if not found:
            raise ServiceNotFoundError(
                f"No model server with UUID or model name {value!r}; list them with "
                "`shipyard model-deployer models list`, or pass its URL."
            ) from None
        if len(found) > 1:
            raise ServiceNotFoundError(
                f"{len(found)} model servers serve a model named {value!r}; pass one's "
                "UUID: " + ", ".join(str(s.uuid) for s in found)
            ) from None
        service = found[0]
    if not service.is_running:
        raise ServiceError(
            f"The model server {service.uuid} is not running ({service.status.state.value}); "
            f"start it with `shipyard model-deployer models start {service.uuid}`."
        )
    return service


@batch.command("predict")
def predict(
    model_uri: Annotated[
        str | None,
        typer.Argument(help="Model path or URI; omit it when using --service."),
    ] = None,
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="Input file, directory or glob (quote it).",
            rich_help_panel="Input",
        ),
    ] = ...,  # type: ignore[assignment]
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Output file (.parquet/.csv/.jsonl), directory, or database URL.",
            rich_help_panel="Output",
        ),
    ] = ...,  # type: ignore[assignment]
    format: Annotated[
        _Format | None,
        typer.Option(
            "--format", help="Output format (default: from suffix).", rich_help_panel="Output"
        ),
    ] = None,
    input_format: Annotated[
        _Format | None,
        typer.Option(
            "--input-format", help="Input format (default: suffix).", rich_help_panel="Input"
        ),
    ] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            help="Model input columns (comma-separated or repeated).",
            rich_help_panel="Input",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column", help="Column copied first to the output.", rich_help_panel="Output"
        ),
    ] = None,
    keep_columns: Annotated[
        list[str] | None,
        typer.Option(
            "--keep-columns", help="Input columns copied to the output.", rich_help_panel="Output"
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, metavar="N", help="Rows per call.", rich_help_panel="Run"
        ),
    ] = 65_536,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, metavar="N", help="Processes.", rich_help_panel="Run"
        ),
    ] = 1,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an unfinished job.", rich_help_panel="Run")
    ] = False,
    on_error: Annotated[
        _OnError,
        typer.Option(
            "--on-error",
            help="Rejected rows: fail the job, or skip them aside.",
            rich_help_panel="Run",
        ),
    ] = _OnError.fail,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing output.", rich_help_panel="Output"),
    ] = False,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="Model server (V2 model URL, name or UUID) to call.",
            rich_help_panel="Model",
        ),
    ] = None,
    table: Annotated[
        str,
        typer.Option("--table", help="Table name for a database output.", rich_help_panel="Output"),
    ] = "predictions",
    input_as: Annotated[
        _InputAs,
        typer.Option(
            "--input-as", help="What the predictor gets for a batch.", rich_help_panel="Model"
        ),
    ] = _InputAs.auto,
    shard_rows: Annotated[
        int,
        typer.Option(
            "--shard-rows",
            min=1,
            metavar="N",
            help="Rows per shard (Parquet input).",
            rich_help_panel="Input",
        ),
    ] = 1 << 18,
    shard_bytes: Annotated[
        int,
        typer.Option(
            "--shard-bytes",
            min=1,
            metavar="N",
            help="Bytes per shard (CSV/JSONL input).",
            rich_help_panel="Input",
        ),
    ] = 64 << 20,
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.", rich_help_panel="Run")
    ] = False,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress", help="Show the progress bar.", rich_help_panel="Run"
        ),
    ] = True,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking server for models:/ URIs.",
            rich_help_panel="Model",
        ),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option("--trust", help="Trust the model's code: a pickle/joblib model from a URL."),
    ] = False,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="SHA-256 of the model's content: checked before loading."),
    ] = None,
    engine: Annotated[
        _Engine,
        typer.Option(
            "--engine", help="local processes, or actors on a Ray cluster.", rich_help_panel="Ray"
        ),
    ] = _Engine.local,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="--engine ray: the cluster (auto, host:port, ray://...).",
            rich_help_panel="Ray",
        ),
    ] = None,
) -> None:
    """Predict every row of --input with the model; write --output."""
    from shipyard.batch import predict as _run

    if tracking_uri:
        import os

        # Worker processes resolve the URI too: they inherit this environment.
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri

    if model_uri is not None and service is not None:
        raise typer.BadParameter("give MODEL_URI or --service, not both")
    if model_uri is None and service is None:
        raise typer.BadParameter("give the model: MODEL_URI, or --service for a model server")
    from shipyard.cli._shared import resolve_uri_secrets

    try:
        summary = _run(
            # {{secret.NAME}} keeps a URL's credentials (model, database) out of argv.
            None if model_uri is None else resolve_uri_secrets(model_uri),
            input,
            resolve_uri_secrets(output),
            format=format.value if format else None,
            columns=_split(columns),
            id_column=id_column,
            keep_columns=_split(keep_columns),
            batch_size=batch_size,
            workers=workers,
            resume=resume,
            on_error="skip" if on_error is _OnError.skip else "fail",
            overwrite=overwrite,
            service=_resolve_service(service) if service else None,
            input_format=input_format.value if input_format else None,
            table=table,
            input_as=input_as.value,
            shard_rows=shard_rows,
            shard_bytes=shard_bytes,
            progress=progress and not json_summary,
            engine=engine.value,
            address=address,
            trusted=trust,
            sha256=sha256,
        )
    except KeyboardInterrupt:
        # Finished shards are in the manifest; the workers were stopped.
        typer.echo("Interrupted. Finished shards are kept: run again with --resume.", err=True)
        raise typer.Exit(130) from None
    if json_summary:
        sys.stdout.write(json.dumps(summary.model_dump()) + "\n")
        return
    from rich.console import Console
    from rich.markup import escape

    resumed = f" ({summary.shards_resumed} from an earlier run)" if summary.shards_resumed else ""
    rows = [
        ("rows", f"{summary.rows:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("time", f"{summary.seconds:,.1f} s"),
        ("rows/s", f"{summary.rows_per_second:,.0f}"),
        ("workers", str(summary.workers)),
        ("shards", f"{summary.shards}{resumed}"),
        ("output", summary.output),
    ]
    if summary.rejects:
        rows.append(("rejects", summary.rejects))
    if summary.nodes:  # --engine ray: shards per Ray node
        rows.append(("nodes", ", ".join(f"{n[:12]}: {c}" for n, c in summary.nodes.items())))
    # Soft wrap: paths are printed whole, whatever the terminal width.
    console = Console(highlight=False, soft_wrap=True)
    for key, value in rows:
        console.print(f"[bold]{key:<9}[/]{escape(value)}")
