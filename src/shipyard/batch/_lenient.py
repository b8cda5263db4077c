"""Reading text input whose cells do not all fit their column's type.

Arrow's CSV and JSON readers convert a whole block at once: one cell that is not a number
in a number column (``oops``, or a string among JSON numbers) fails the block, and with it
the job, even under ``--on-error skip``. Here such a column is read as text instead, only
in the batches that need it; the scorer converts it column by column
(``_scorer.column_array``), so the one bad cell is the error of its row (bisected like
any row the predictor rejects) and every other row is scored as usual.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["infer_jsonl_schema", "jsonl_batches", "lenient_csv_types", "restore_types"]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)  # a number as its shortest round-tripping text


def _column(values: list[Any], type_: pa.DataType | None) -> pa.Array:
    """``values`` as ``type_`` (inferred when None); as text when they do not fit it."""
    import pyarrow as pa

    try:
        return pa.array(values, type=type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([_text(v) for v in values], type=pa.string())


def _rows(lines: list[bytes]) -> list[dict[str, Any]]:
    rows = []
    for line in lines:
        if line.strip():
            row = json.loads(line)
            rows.append(row if isinstance(row, dict) else {})
    return rows


def infer_jsonl_schema(sample: bytes) -> pa.Schema:
    """The columns of JSON lines whose types Arrow refused to infer (a column mixing
    numbers and strings): those columns are text, the others as Arrow infers them."""
    import pyarrow as pa

    rows = _rows(sample.splitlines())
    names = list(dict.fromkeys(key for row in rows for key in row))
    fields = [pa.field(n, _column([row.get(n) for row in rows], None).type) for n in names]
    return pa.schema(fields)


def jsonl_batches(
    data: bytes, schema: pa.Schema, skip: int, batch_size: int, columns: list[str] | None
) -> Iterator[pa.RecordBatch]:
    """The JSON lines of ``data`` after the first ``skip`` rows, ``batch_size`` rows at a
    time; a column's cells that do not fit its type make it text in that batch."""
    import pyarrow as pa

    names = columns if columns is not None else schema.names
    types = {f.name: f.type for f in schema}
    lines = [line for line in data.splitlines() if line.strip()][skip:]
    for lo in range(0, len(lines), batch_size):
        rows = _rows(lines[lo : lo + batch_size])
        arrays = [_column([row.get(n) for row in rows], types.get(n)) for n in names]
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def lenient_csv_types(schema: pa.Schema) -> dict[str, pa.DataType]:
    """Every column as text: nothing fails to convert while reading."""
    import pyarrow as pa

    return {name: pa.string() for name in schema.names}


def restore_types(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` (read as text) with each column cast back to its type in ``schema``
    where every cell of the batch converts; the others stay text."""
    import pyarrow as pa

    types = {f.name: f.type for f in schema}
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        wanted = types.get(name)
        if wanted is not None and column.type != wanted:
            # Where a cell does not convert, the scorer names it (``column_array``).
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = column.cast(wanted)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
