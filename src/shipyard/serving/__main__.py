"""``python -m shipyard.serving MODEL_URI ...``: the server without the CLI's imports.

The same options as ``shipyard serve``; argparse instead of Typer/Rich so a container or
the local deployer starts the server as fast as possible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shipyard._validation import Problem, describe_validation_error
from shipyard.errors import ConfigError, ShipyardError
from shipyard.serving.config import ServerConfig

__all__ = ["build_config", "main"]


def build_config(
    model_uris: list[str],
    *,
    model_repository: Path | None = None,
    name: str | None = None,
    host: str | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    no_grpc: bool = False,
    workers: int | None = None,
    max_batch_size: int | None = None,
    max_batch_delay: float | None = None,
    no_batching: bool = False,
    max_body_size: int | None = None,
    max_buffered_bytes: int | None = None,
    control_socket: Path | None = None,
    run_dir: Path | None = None,
    request_timeout: float | None = None,
    max_queue: int | None = None,
    idle_timeout: float | None = None,
    expose_errors: bool = False,
    access_log: bool = False,
    auth_token_file: Path | None = None,
    open_paths: str | None = None,
    insecure: bool = False,
    trust: bool = False,
    sha256: str | None = None,
    origin: str | None = None,
) -> ServerConfig:
    """A ``ServerConfig`` from command-line values; unset ones come from the environment
    (``SHIPYARD_SERVER_*``) or the defaults. A bad value raises ``ConfigError`` with one
    line naming the option."""
    if name is not None and len(model_uris) != 1:
        raise ConfigError("--name applies to exactly one model URI; drop it or pass one URI.")
    # Plain dicts, validated in one go below, so every mistake gets the same one line.
    values: dict[str, Any] = {}
    if sha256 is not None and len(model_uris) != 1:
        raise ConfigError("--sha256 pins exactly one model URI; drop it or pass one URI.")
    if origin and len(model_uris) != 1:
        raise ConfigError("--origin names where one model URI came from; pass one URI.")
    if model_uris:
        values["models"] = [
            {"uri": u, "name": name, "trusted": trust, "sha256": sha256, "origin": origin or None}
            for u in model_uris
        ]
    for key, value in (
        ("model_repository", model_repository),
        ("host", host),
        ("http_port", http_port),
        ("grpc_port", grpc_port),
        ("workers", workers),
        ("max_body_size", max_body_size),
        ("max_buffered_bytes", max_buffered_bytes),
        ("control_socket", control_socket),
        ("run_dir", run_dir),
        ("request_timeout", request_timeout),
        ("max_queue", max_queue),
        ("idle_timeout", idle_timeout),
        ("auth_token_file", auth_token_file),
    ):
        if value is not None:
            values[key] = value
    if no_grpc:
        values["grpc_enabled"] = False
    if expose_errors:
        values["expose_errors"] = True
    if access_log:
        values["access_log"] = True
    if insecure:
        values["insecure"] = True
    if open_paths is not None:
        # Comma-separated; "" opens nothing (even health needs the token then).
        values["open_paths"] = [p.strip() for p in open_paths.split(",") if p.strip()]
    batching: dict[str, Any] = {}
    if max_batch_size is not None:
        batching["max_batch_size"] = max_batch_size
    if max_batch_delay is not None:
        batching["max_batch_delay"] = max_batch_delay
    if no_batching:
        batching["enabled"] = False
    if batching:
        values["batching"] = batching
    try:
        return ServerConfig(**values)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from err


def _option_line(problem: Problem) -> str:
    if problem.type == "value_error":
        # Our own validators' messages are already written for the user.
        return problem.message
    fields = [part for part in problem.loc if isinstance(part, str)]
    option = "--" + fields[-1].replace("_", "-") if fields else "a server option"
    return f"{option}: {problem.message} (got {problem.input!r})."


def _one_line(err: ValidationError) -> str:
    """A pydantic ``ValidationError`` as one line per mistake, named by its option."""
    return describe_validation_error(err, line=_option_line, sep=" ")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m shipyard.serving", description="Serve models over HTTP and gRPC."
    )
    p.add_argument("model_uris", nargs="*", metavar="MODEL_URI")
    p.add_argument("--model-repository", type=Path, help="folder with one model per subfolder")
    p.add_argument("--name", help="serve the one model under this name")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="HTTP port (default 8080; 0 = any free)")
    p.add_argument("--grpc-port", type=int, help="gRPC port (default HTTP+1; 0 = any free)")
    p.add_argument("--no-grpc", action="store_true", help="do not serve gRPC")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--max-batch-size", type=int, help="most rows per predict call")
    p.add_argument("--max-batch-delay", type=float, help="seconds a batch may wait")
    p.add_argument("--no-batching", action="store_true", help="turn adaptive batching off")
    p.add_argument(
        "--max-body-size", type=int, help="largest request body in bytes (default 32 MiB)"
    )
    p.add_argument(
        "--max-buffered-bytes",
        type=int,
        help="request bytes a worker holds over all connections before 503 "
        "(default 4 x --max-body-size, at least 256 MiB)",
    )
    p.add_argument("--control-socket", type=Path, help="path of the control Unix socket")
    p.add_argument("--run-dir", type=Path, help="folder for the control socket and metrics")
    p.add_argument("--request-timeout", type=float, help="seconds per request (default 60)")
    p.add_argument("--max-queue", type=int, help="requests per model and worker before 503")
    p.add_argument("--idle-timeout", type=float, help="seconds an idle connection stays open")
    p.add_argument(
        "--expose-errors", action="store_true", help="send predictor errors to clients (dev)"
    )
    p.add_argument("--access-log", action="store_true", help="log every HTTP request")
    p.add_argument(
        "--auth-token-file", type=Path, help="file with the bearer token requests must carry"
    )
    p.add_argument(
        "--open-paths",
        help="comma-separated HTTP paths needing no token (default: health, metrics)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback host without a token"
    )
    p.add_argument(
        "--trust", action="store_true", help="trust the models' code (remote pickle/joblib)"
    )
    p.add_argument("--sha256", help="the model's content SHA-256; checked, and trusts it")
    p.add_argument("--origin", help="the URI the model's files were copied from (its trust rule)")
    return p


def main(argv: list[str] | None = None) -> int:
    from shipyard.serving.supervisor import run_supervisor

    args = _parser().parse_args(argv)
    try:
        config = build_config(
            args.model_uris,
            model_repository=args.model_repository,
            name=args.name,
            host=args.host,
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            no_grpc=args.no_grpc,
            workers=args.workers,
            max_batch_size=args.max_batch_size,
            max_batch_delay=args.max_batch_delay,
            no_batching=args.no_batching,
            max_body_size=args.max_body_size,
            max_buffered_bytes=args.max_buffered_bytes,
            control_socket=args.control_socket,
            run_dir=args.run_dir,
            request_timeout=args.request_timeout,
            max_queue=args.max_queue,
            idle_timeout=args.idle_timeout,
            expose_errors=args.expose_errors,
            access_log=args.access_log,
            auth_token_file=args.auth_token_file,
            open_paths=args.open_paths,
            insecure=args.insecure,
            trust=args.trust,
            sha256=args.sha256,
            origin=args.origin,
        )
    except ShipyardError as err:
        sys.stderr.write(f"Error: {err}\n")
        return 2
    return run_supervisor(config)


if __name__ == "__main__":
    sys.exit(main())
