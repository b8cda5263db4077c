"""``shipyard serve MODEL_URI ...``: run the model server in the foreground.

The same server as ``python -m shipyard.serving``; this command only adds Typer's help.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["serve"]


def serve(
    model_uris: list[str] = typer.Argument(
        None,
        metavar="MODEL_URI...",
        help="Models to serve: paths, file:// or fsspec URLs ({{secret.NAME}} for a URL "
        "with credentials).",
    ),
    model_repository: Path | None = typer.Option(
        None, "--model-repository", help="A folder with one model per subfolder."
    ),
    name: str | None = typer.Option(None, "--name", help="Serve the one model under this name."),
    host: str | None = typer.Option(None, "--host", help="Interface to bind (default: 127.0.0.1)."),
    http_port: int | None = typer.Option(
        None, "--http-port", "--port", "-p", help="HTTP port (default: 8080; 0: any free port)."
    ),
    grpc_port: int | None = typer.Option(
        None, "--grpc-port", help="gRPC port (default: HTTP port + 1; 0: any free port)."
    ),
    no_grpc: bool = typer.Option(False, "--no-grpc", help="Do not serve gRPC."),
    workers: int | None = typer.Option(
        None, "--workers", help="Worker processes (default: one per core)."
    ),
    max_batch_size: int | None = typer.Option(
        None, "--max-batch-size", help="Most rows per predict call (default: 1024)."
    ),
    max_batch_delay: float | None = typer.Option(
        None,
        "--max-batch-delay",
        help="Seconds a batch may wait for more requests (default: 0.002).",
    ),
    no_batching: bool = typer.Option(False, "--no-batching", help="Turn adaptive batching off."),
    max_body_size: int | None = typer.Option(
        None, "--max-body-size", help="Largest request body in bytes (default: 32 MiB)."
    ),
    max_buffered_bytes: int | None = typer.Option(
        None,
        "--max-buffered-bytes",
        help="Request bytes a worker holds over all connections before it answers 503 "
        "(default: 4 x --max-body-size, at least 256 MiB).",
    ),
    control_socket: Path | None = typer.Option(
        None, "--control-socket", help="Path of the control Unix socket."
    ),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Folder for the control socket and metrics (default: a temp dir)."
    ),
    request_timeout: float | None = typer.Option(
        None, "--request-timeout", help="Seconds a request may take; then 504 (default: 60)."
    ),
    max_queue: int | None = typer.Option(
        None,
        "--max-queue",
        help="Requests per model and worker before more get 503 (default: from batch size).",
    ),
    idle_timeout: float | None = typer.Option(
        None, "--idle-timeout", help="Seconds an idle connection stays open (default: 30)."
    ),
    expose_errors: bool = typer.Option(
        False, "--expose-errors", help="Send predictors' exception text to clients (development)."
    ),
    access_log: bool = typer.Option(
        False, "--access-log", help="Log every request: method, path, status, latency."
    ),
    auth_token_file: Path | None = typer.Option(
        None,
        "--auth-token-file",
        help="File holding the bearer token every request must carry (or set "
        "SHIPYARD_SERVER_AUTH_TOKEN).",
    ),
    open_paths: str | None = typer.Option(
        None,
        "--open-paths",
        help="Comma-separated HTTP paths that need no token (default: the health paths and "
        "/metrics; '' for none).",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback --host without a token."
    ),
    trust: bool = typer.Option(
        False,
        "--trust",
        envvar="SHIPYARD_MODEL_TRUSTED",
        help="Trust the models' code: load a pickle/joblib model from a remote URI.",
    ),
    sha256: str | None = typer.Option(
        None,
        "--sha256",
        envvar="SHIPYARD_MODEL_SHA256",
        help="SHA-256 of the model's content: checked before loading.",
    ),
    origin: str | None = typer.Option(
        None,
        "--origin",
        envvar="SHIPYARD_MODEL_ORIGIN",
        help="The URI the model's files were copied from (a pod's /mnt/models): its trust "
        "rule applies, not the local path's.",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking server for models:/ and runs:/ URIs."
    ),
) -> None:
    """Serve models over HTTP (Open Inference Protocol, MLflow, KServe V1, Seldon) and gRPC."""
    if tracking_uri:
        import os

        # The workers resolve models:/ URIs themselves; they inherit this environment.
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    from shipyard.cli._shared import resolve_uri_secrets
    from shipyard.serving.__main__ import build_config
    from shipyard.serving.supervisor import run_supervisor

    config = build_config(
        # The workers get the resolved URIs in their environment, never in argv.
        [resolve_uri_secrets(uri) for uri in model_uris or []],
        model_repository=model_repository,
        name=name,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        no_grpc=no_grpc,
        workers=workers,
        max_batch_size=max_batch_size,
        max_batch_delay=max_batch_delay,
        no_batching=no_batching,
        max_body_size=max_body_size,
        max_buffered_bytes=max_buffered_bytes,
        control_socket=control_socket,
        run_dir=run_dir,
        request_timeout=request_timeout,
        max_queue=max_queue,
        idle_timeout=idle_timeout,
        expose_errors=expose_errors,
        access_log=access_log,
        auth_token_file=auth_token_file,
        open_paths=open_paths,
        insecure=insecure,
        trust=trust,
        sha256=sha256 or None,
        origin=origin,
    )
    code = run_supervisor(config)
    if code:
        raise typer.Exit(code)
