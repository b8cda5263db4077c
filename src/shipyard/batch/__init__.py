"""Batch inference: predictions for data sets larger than memory, on every core, resumable.

``predict(model_uri, input, output)`` streams Parquet, CSV or JSON-lines files through the
model's Predictor (``preprocess`` -> ``predict`` -> ``postprocess``) in worker processes
and writes Parquet, CSV or JSON-lines files, or a database table; ``resume=True`` after a
crash finishes the job with exactly the rows of an uninterrupted run.

Importing this package stays light: worker processes import it before numpy, so thread
limits can still be set.
"""

from __future__ import annotations

from typing import Any, Literal

from shipyard._imports import require
from shipyard.batch._options import BatchOptions, BatchSummary
from shipyard.errors import ConfigError

__all__ = ["BatchOptions", "BatchSummary", "predict"]


def _require_batch_extra() -> None:
    """Check the ``batch`` extra up front: one line of advice, not a worker's traceback."""
    # pyarrow reads and writes every shard; orjson writes JSON-lines output.
    for package in ("pyarrow", "orjson"):
        require(package, package=package, extra="batch", purpose="batch inference")


def predict(
    model_uri: str | None,
    input: str,
    output: str,
    *,
    format: Literal["parquet", "csv", "jsonl"] | None = None,
    columns: list[str] | None = None,
    id_column: str | None = None,
    keep_columns: list[str] | None = None,
    batch_size: int = 65_536,
    workers: int = 1,
    resume: bool = False,
    on_error: Literal["fail", "skip"] = "fail",
    overwrite: bool = False,
    service: Any = None,
    **options: Any,
) -> BatchSummary:
    """Predict every row of ``input`` with the model at ``model_uri``; write ``output``.

    ``input`` is a file, a directory or a glob of Parquet, CSV or JSON-lines files.
    ``output`` is a ``.parquet``/``.csv``/``.jsonl`` file, a directory (one part per
    shard, in input order) or a SQLAlchemy URL (``sqlite:///out.db``; the table is
    ``table=``, default ``predictions``). ``service`` (a V2 model URL such as
    ``http://127.0.0.1:8080/v2/models/NAME``, or a ``Service`` from the registry) sends
    the batches to that running model server instead of loading the model (pass
    ``model_uri=None``). Further options: see ``BatchOptions``.

    Raises ``ConfigError`` when the output exists (pass ``overwrite=True``) or an
    unfinished job is there (pass ``resume=True``), ``InvalidInputError`` naming the file
    and rows for unreadable input, ``PredictorError`` when the predictor fails and
    ``on_error="fail"``.
    """
    from pydantic import ValidationError

    from shipyard._validation import describe_validation_error

    if service is not None:
        from shipyard.batch._remote import resolve_service, service_headers

        options.setdefault("service_headers", service_headers(service))
        service = resolve_service(service)
    try:
        opts = BatchOptions(
            model_uri=model_uri,
            service=service,
            input=input,
            output=output,
            format=format,
            columns=columns,
            id_column=id_column,
            keep_columns=keep_columns or [],
            batch_size=batch_size,
            workers=workers,
            resume=resume,
            on_error=on_error,
            overwrite=overwrite,
            **options,
        )
    except ValidationError as err:
        raise ConfigError(f"Invalid batch options: {describe_validation_error(err)}") from err
    if opts.engine == "ray":
        return _predict_on_ray(opts)
    from shipyard.batch._pool import start_early

    # The workers start first: their imports and model load overlap ours.
    pool = start_early(
        opts.model_uri,
        opts.input_as,
        opts.timeout,
        opts.workers,
        opts.service,
        opts.load_trust(),
    )
    try:
        _require_batch_extra()
        from shipyard.batch._job import run_job
    except BaseException:
        if pool is not None:
            pool.stop(graceful=False)
        raise
    return run_job(opts, pool)


def _predict_on_ray(opts: BatchOptions) -> BatchSummary:
    """The job with Ray actors doing the shards (``shipyard.batch._ray``)."""
    from shipyard.batch._ray import start_ray_pool
    from shipyard.batch._worker import WorkerSpec

    service_url = headers = None
    if opts.service is not None:
        from shipyard.batch._remote import resolve_service, service_headers

        service_url = resolve_service(opts.service)
        headers = opts.service_headers or service_headers(opts.service)
    spec = WorkerSpec(
        opts.model_uri, service_url, opts.input_as, 1, opts.timeout, headers, opts.load_trust()
    )
    # The actors start first: their start-up (a Ray worker process each, then the model)
    # overlaps this process's own imports and the planning.
    pool = start_ray_pool(opts.address, opts.workers if opts.workers > 1 else None, spec)
    try:
        _require_batch_extra()
        from shipyard.batch._job import run_job
    except BaseException:
        pool.stop(graceful=False)
        raise
    return run_job(opts.model_copy(update={"workers": len(pool.children)}), pool)  # type: ignore[arg-type]
