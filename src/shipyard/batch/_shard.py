"""Process one shard: read it, predict batch by batch, write its output part atomically.

Runs the same way in the coordinating process and in worker processes. A part is
written to ``<name>.tmp`` and renamed when complete, so a part that exists is whole.
Rows the predictor rejects are found by bisecting the failing batch (a few extra
predict calls per bad row), and written aside with the reason when ``on_error`` is
``skip``; with ``fail`` the first failure stops the job.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.batch._plan import InputFile, InputFormat, Shard
from shipyard.batch._read import ShardReader
from shipyard.batch._scorer import ColumnTypeError
from shipyard.errors import (
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    PredictorError,
    ServiceError,
    ShipyardError,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.batch._scorer import Scorer

__all__ = ["PartFormat", "ShardResult", "ShardTask", "run_shard"]

PartFormat = InputFormat
#: Name of the column holding each row's input row number (within its shard) in parts
#: that feed a database table.
ROW_COLUMN = "_row"


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs for one shard; small, so cheap to send to a process."""

    shard: Shard
    file: InputFile
    features: tuple[str, ...]
    carry: tuple[str, ...]
    """Input columns copied to the output before the predictions (id, then keep)."""
    batch_size: int
    on_error: Literal["fail", "skip"]
    part_path: str
    part_format: PartFormat
    rejects_path: str
    row_numbers: bool = False
    """Add the ``_row`` column (row number within the shard), for database outputs."""


@dataclass(frozen=True)
class ShardResult:
    index: int
    rows: int
    rejected: int
    seconds: float
    part: str | None
    rejects: str | None
    node: str | None = None
    """The Ray node that read and predicted the shard (the ``ray`` engine only)."""


#: Rejected rows, none accepted, after which a shard stops with an error under "skip".
_GIVE_UP = 1000
#: Errors that are about the job, not about some rows: never bisected, never skipped (a
#: model loaded lazily, ``load_model(lazy=True)``, may fail to load on a later batch).
_FATAL = (ServiceError, MissingDependencyError, ModelLoadError)


class _PartWriter:
    """Streams tables into one part file of the chosen format, under a temporary name."""

    def __init__(self, path: str, fmt: PartFormat) -> None:
        self.path = path
        self.tmp = path + ".tmp"
        self.fmt = fmt
        self.schema: pa.Schema | None = None
        self._writer: Any = None
        self._fh: Any = None

    def write(self, table: pa.Table) -> None:
        import pyarrow as pa

        if self.schema is None:
            self.schema = table.schema
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.tmp, self.schema)
            elif self.fmt == "csv":
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self.tmp, self.schema)
            else:
                self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish()
        elif table.schema != self.schema:
            try:
                table = table.cast(self.schema)
            except (pa.ArrowInvalid, ValueError) as err:
                raise PredictorError(
                    f"The predictor's output changed type between batches ({self.schema} "
                    f"then {table.schema}): {err}"
                ) from err
        if self.fmt == "jsonl":
            self._fh.write(_jsonl_bytes(table))
        else:
            self._writer.write_table(table)

    def finish(self) -> str | None:
        """Close and move the part into place; None when no row was written."""
        if self._writer is not None:
            self._writer.close()
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        if self.schema is None:
            # Nothing accepted: no part (a stale one from an earlier run must go).
            Path(self.path).unlink(missing_ok=True)
            return None
        os.replace(self.tmp, self.path)
        return os.path.basename(self.path)

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._fh is not None:
                self._fh.close()
        finally:
            Path(self.tmp).unlink(missing_ok=True)


def _jsonl_bytes(table: pa.Table) -> bytes:
    # orjson writes the shortest repr that round-trips each double (pandas' writer stops
    # at 15 digits) and NaN as null; rows come as dicts built by Arrow's C++ code.
    import orjson

    return b"".join(orjson.dumps(row) + b"\n" for row in table.to_pylist())


def _fail_message(task: ShardTask, reader: ShardReader, offset: int, n: int, err: Exception) -> str:
    cols = ", ".join(task.features)
    return (
        f"The predictor failed on {task.file.path}, {reader.rows_text(offset, n)}: "
        f"{str(err).rstrip('.')}. (Model input columns: {cols}; choose them with --columns.) "
        "Fix the predictor or the data and run again with --resume, or pass "
        "--on-error skip to write such rows aside and go on."
    )


class _Batcher:
    """Predicts one batch; on failure, bisects it to find the rejected rows."""

    def __init__(self, task: ShardTask, scorer: Scorer, reader: ShardReader) -> None:
        self.task = task
        self.scorer = scorer
        self.reader = reader
        self.features = list(task.features)
        self.rejects: list[tuple[int, str, pa.RecordBatch]] = []
        self.accepted = 0

    def segments(self, batch: pa.RecordBatch, offset: int) -> list[tuple[int, int, pa.Table]]:
        """(start, length, predictions) for the accepted runs of rows of ``batch``."""
        try:
            table = self.scorer.run(batch, self.features)
            self.accepted += batch.num_rows
            return [(0, batch.num_rows, table)]
        except _FATAL:
            raise
        except Exception as err:
            if isinstance(err, ColumnTypeError) and self.task.on_error == "fail":
                raise InvalidInputError(
                    f"Cannot use {self.task.file.path}, "
                    f"{self.reader.rows_text(offset, batch.num_rows)}: {err}. Fix the data "
                    "or choose other columns with --columns, then run again with --resume, "
                    "or pass --on-error skip to write rows with bad values aside."
                ) from err
            # Under skip, a value that does not convert is the error of its row only:
            # bisecting finds that row, as for a row the predictor rejects.
            if self.task.on_error == "fail":
                cls = InvalidInputError if isinstance(err, InvalidInputError) else PredictorError
                raise cls(
                    _fail_message(self.task, self.reader, offset, batch.num_rows, err)
                ) from err
            if batch.num_rows == 1:
                self.rejects.append((offset, str(err), batch))
                if len(self.rejects) >= _GIVE_UP and not self.accepted:
                    # Bisecting costs about two calls per row when every row fails: a
                    # predictor that rejects everything is broken, not picky.
                    raise PredictorError(
                        f"The predictor rejected each of the first {_GIVE_UP} rows of "
                        f"{self.task.file.path}, {self.reader.rows_text(0, offset + 1)}, "
                        f"and accepted none; the last error: {err}. Fix the predictor or "
                        "the data, then run again with --resume."
                    ) from err
                return []
        mid = batch.num_rows // 2
        left = self.segments(batch.slice(0, mid), offset)
        right = self.segments(batch.slice(mid), offset + mid)
        return left + [(s + mid, n, t) for s, n, t in right]


def _assemble(
    batch: pa.RecordBatch,
    segments: list[tuple[int, int, pa.Table]],
    task: ShardTask,
    offset: int,
) -> pa.Table | None:
    import numpy as np
    import pyarrow as pa

    if not segments:
        return None
    if len(segments) == 1 and segments[0][1] == batch.num_rows:
        preds = segments[0][2]
        carry: dict[str, Any] = {c: batch.column(c) for c in task.carry}
        starts = [(0, batch.num_rows)]
    else:
        preds = pa.concat_tables([t for _, _, t in segments], promote_options="permissive")
        parts = [batch.slice(s, n) for s, n, _ in segments]
        carry = {
            c: pa.chunked_array([p.column(c) for p in parts], batch.schema.field(c).type)
            for c in task.carry
        }
        starts = [(s, n) for s, n, _ in segments]
    clash = [c for c in preds.column_names if c in carry or c == ROW_COLUMN]
    if clash:
        raise PredictorError(
            f"The prediction column(s) {clash} have the same name as input columns copied "
            "to the output; rename them in the predictor or drop them from --keep-columns."
        )
    cols: dict[str, Any] = {}
    if task.row_numbers:
        cols[ROW_COLUMN] = pa.array(
            np.concatenate(
                [np.arange(offset + s, offset + s + n, dtype=np.int64) for s, n in starts]
            )
        )
    cols.update(carry)
    for name in preds.column_names:
        cols[name] = preds.column(name)
    return pa.table(cols)


def _write_rejects(task: ShardTask, reader: ShardReader, rejects: list[Any]) -> str | None:
    path = Path(task.rejects_path)
    if not rejects:
        path.unlink(missing_ok=True)
        return None
    tmp = path.with_name(path.name + ".tmp")
    first = reader.first_row()
    with tmp.open("w", encoding="utf-8") as fh:
        for offset, reason, row in rejects:
            record = {
                "file": task.file.path,
                "row": first + offset,
                "shard_row": offset,
                "error": reason,
                "values": row.to_pylist()[0],
            }
            fh.write(json.dumps(record, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path.name


def run_shard(task: ShardTask, scorer: Scorer, progress: Callable[[int, int], None]) -> ShardResult:
    """Predict every row of ``task.shard``; ``progress(rows, rejected)`` after each batch."""
    started = time.perf_counter()
    columns = list(dict.fromkeys([*task.features, *task.carry]))
    reader = ShardReader(task.file, task.shard, columns, task.batch_size)
    batcher = _Batcher(task, scorer, reader)
    writer = _PartWriter(task.part_path, task.part_format)
    rows = 0
    try:
        for batch in reader:
            offset = reader.rows_read
            before = len(batcher.rejects)
            table = _assemble(batch, batcher.segments(batch, offset), task, offset)
            if table is not None:
                writer.write(table)
                rows += table.num_rows
            progress(batch.num_rows, len(batcher.rejects) - before)
        part = writer.finish()
    except BaseException:
        writer.abort()
        raise
    rejects = _write_rejects(task, reader, batcher.rejects)
    return ShardResult(
        index=task.shard.index,
        rows=rows,
        rejected=len(batcher.rejects),
        seconds=time.perf_counter() - started,
        part=part,
        rejects=rejects,
    )


def error_payload(err: BaseException) -> tuple[str, str]:
    """(class name, message) of an error, to send to the coordinating process."""
    if isinstance(err, ShipyardError):
        return type(err).__name__, err.message
    return type(err).__name__, f"{type(err).__name__}: {err}"


def error_from_payload(name: str, message: str) -> ShipyardError:
    """Rebuild a worker's error in the coordinating process, as the same class if we can."""
    from shipyard import errors

    cls = getattr(errors, name, None)
    if (
        isinstance(cls, type)
        and issubclass(cls, ShipyardError)
        and cls is not MissingDependencyError
    ):
        return cls(message)
    return PredictorError(message)
