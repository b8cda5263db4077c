"""Read one shard as a stream of Arrow record batches of at most ``batch_size`` rows.

Each worker reads its own shard from the file, so only a shard description crosses
the process boundary. Errors name the file and the rows (0-based data rows of that
file, the CSV header not counted).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.batch._plan import InputFile, Shard

__all__ = ["ShardReader", "count_rows_before"]


def count_rows_before(info: InputFile, offset: int) -> int:
    """Data rows of a text file that end before byte ``offset`` (only used on error paths)."""
    rows = 0
    with open(info.path, "rb") as fh:
        fh.seek(info.data_start)
        left = offset - info.data_start
        while left > 0:
            chunk = fh.read(min(left, 1 << 24))
            if not chunk:
                break
            rows += chunk.count(b"\n")
            left -= len(chunk)
    return rows


class ShardReader:
    """Iterate the batches of one shard; ``rows_read`` counts rows handed out so far."""

    def __init__(
        self, info: InputFile, shard: Shard, columns: list[str] | None, batch_size: int
    ) -> None:
        import pyarrow as pa

        self.info = info
        self.shard = shard
        self.columns = columns
        self.batch_size = batch_size
        self.schema: pa.Schema = pa.ipc.read_schema(pa.py_buffer(info.schema))
        self.rows_read = 0
        self._text_first_row: int | None = None

    # -- row numbers for messages ---------------------------------------------------------
    def first_row(self) -> int:
        """The file-wide row number of the shard's first row."""
        if self.info.format == "parquet":
            return self.shard.start
        if self._text_first_row is None:
            self._text_first_row = count_rows_before(self.info, self.shard.start)
        return self._text_first_row

    def rows_text(self, offset: int, count: int) -> str:
        """'rows A-B' for ``count`` rows starting ``offset`` rows into the shard."""
        a = self.first_row() + offset
        return f"rows {a}-{a + max(count, 1) - 1}"

    def _read_error(self, err: Exception) -> InvalidInputError:
        where = self.rows_text(self.rows_read, self._rows_left_estimate())
        return InvalidInputError(
            f"Cannot read {self.info.path} ({self.info.format}), {where}: {err}. "
            "Fix or remove the bad rows, then run again with --resume."
        )

    def _rows_left_estimate(self) -> int:
        if self.info.format == "parquet":
            return self.shard.end - self.shard.start - self.rows_read
        return max(1, self.batch_size)

    # -- reading --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        it = self._parquet() if self.info.format == "parquet" else self._text()
        lenient = False
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except pa.ArrowInvalid as err:
                if self.info.format == "parquet" or lenient:
                    raise self._read_error(err) from err
                # A cell that does not fit its column's type (past the sample the types
                # were inferred from): read the rest with such columns as text, so that
                # the cell is its row's error, not the shard's (``_lenient``).
                lenient = True
                it = self._lenient_text()
                continue
            except (pa.ArrowException, OSError) as err:
                raise self._read_error(err) from err
            if batch.num_rows == 0:
                continue
            # Rebatch: text readers produce blocks of their own size.
            for lo in range(0, batch.num_rows, self.batch_size):
                part = batch.slice(lo, self.batch_size)
                yield part
                self.rows_read += part.num_rows

    def _parquet(self) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        # Buffered page-by-page reads: memory follows the batch, not the row group.
        pf = pq.ParquetFile(self.info.path, pre_buffer=False, buffer_size=1 << 20)
        skip = self.shard.start - self.shard.group_start
        take = self.shard.end - self.shard.start
        # One thread per worker: the workers already use every core.
        for batch in pf.iter_batches(
            batch_size=self.batch_size,
            row_groups=list(self.shard.row_groups),
            columns=self.columns,
            use_threads=False,
        ):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            if skip:
                batch = batch.slice(skip)
                skip = 0
            if batch.num_rows >= take:
                yield batch.slice(0, take)
                return
            take -= batch.num_rows
            yield batch

    def _text(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.json as pjson

        # A zero-copy view of the shard's bytes in a memory map: file pages the kernel
        # can drop, not a heap copy of the whole shard.
        with pa.memory_map(self.info.path) as mm:
            mm.seek(self.shard.start)
            data = mm.read_buffer(self.shard.end - self.shard.start)
        buf = pa.BufferReader(data)
        # Blocks of ~ batch_size rows keep memory near one batch.
        block = max(1 << 16, min(1 << 26, len(data) // max(1, self._est_batches())))
        if self.info.format == "csv":
            types = {f.name: f.type for f in self.schema}
            reader = pcsv.open_csv(
                buf,
                read_options=pcsv.ReadOptions(
                    column_names=self.schema.names, block_size=block, use_threads=False
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types=types, include_columns=self.columns
                ),
            )
        else:
            reader = pjson.open_json(
                buf,
                read_options=pjson.ReadOptions(block_size=block, use_threads=False),
                parse_options=pjson.ParseOptions(
                    explicit_schema=self.schema, unexpected_field_behavior="ignore"
                ),
            )
        for batch in reader:
            if self.columns is not None and self.info.format == "jsonl":
                batch = batch.select(self.columns)
            yield batch

    def _lenient_text(self) -> Iterator[pa.RecordBatch]:
        """The shard's rows after those handed out, columns that do not convert as text."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        from shipyard.batch._lenient import jsonl_batches, lenient_csv_types, restore_types

        with pa.memory_map(self.info.path) as mm:
            mm.seek(self.shard.start)
            data = mm.read_buffer(self.shard.end - self.shard.start)
        if self.info.format == "jsonl":
            yield from jsonl_batches(
                data.to_pybytes(), self.schema, self.rows_read, self.batch_size, self.columns
            )
            return
        reader = pcsv.open_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(
                column_names=self.schema.names,
                block_size=1 << 20,
                use_threads=False,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=lenient_csv_types(self.schema),
                include_columns=self.columns,
                strings_can_be_null=True,
            ),
        )
        skip = self.rows_read  # handed out already (Arrow skips only within one block)
        for batch in reader:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            yield restore_types(batch.slice(skip), self.schema)
            skip = 0

    def _est_batches(self) -> int:
        return max(1, -(-self.shard.est_rows // self.batch_size))
