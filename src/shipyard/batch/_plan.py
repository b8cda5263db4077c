"""Find the input files and cut them into shards: deterministic units of work.

A shard is what one worker reads, predicts and writes as one output part; the plan
depends only on the input files and the shard size, never on the number of workers,
so a resumed job with a different ``--workers`` still recognises finished shards.

- Parquet: whole row groups, grouped up to ``shard_rows``; a row group more than four
  times larger is cut into row ranges (the reader skips the rows before its range).
- CSV and JSON lines: byte ranges of about ``shard_bytes`` that start and end on a
  line boundary, so each worker reads only its own bytes. (As with pyarrow's default
  CSV reader, a newline inside a quoted CSV value is not supported.)
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shipyard.errors import ConfigError, InvalidInputError

__all__ = ["FORMATS", "FORMAT_BY_SUFFIX", "InputFile", "Plan", "Shard", "make_plan"]

#: The file formats batch jobs read, and write their parts and outputs in.
InputFormat = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[InputFormat, ...] = ("parquet", "csv", "jsonl")
FORMAT_BY_SUFFIX: dict[str, InputFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
#: Bytes read from the start of a text file to infer its column types.
_SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class InputFile:
    """One input file and what a worker needs to read any shard of it."""

    path: str
    format: InputFormat
    size: int
    mtime_ns: int
    schema: bytes
    """The file's Arrow schema (serialized), the same for all its shards."""
    data_start: int = 0
    """Text files: the byte offset after the header line (CSV) or 0."""


@dataclass(frozen=True)
class Shard:
    """A contiguous part of one input file, in input order."""

    index: int
    file: int
    """Index into ``Plan.files``."""
    start: int
    """Parquet: first row (file-wide). Text: first byte."""
    end: int
    """Parquet: end row (exclusive). Text: end byte (exclusive)."""
    row_groups: tuple[int, ...] = ()
    """Parquet: the row groups covering ``[start, end)``."""
    group_start: int = 0
    """Parquet: the file-wide row number where ``row_groups[0]`` begins."""
    est_rows: int = 0
    """Rows, exact for Parquet, estimated from the byte size for text."""

    def key(self, plan: Plan) -> str:
        """Identity across runs: the file's path, size and mtime, and the range."""
        f = plan.files[self.file]
        return f"{f.path}|{f.size}|{f.mtime_ns}|{self.start}-{self.end}"

    def describe(self, plan: Plan) -> str:
        f = plan.files[self.file]
        if f.format == "parquet":
            return f"{f.path}, rows {self.start}-{self.end - 1}"
        return f"{f.path}, bytes {self.start}-{self.end - 1}"


@dataclass(frozen=True)
class Plan:
    files: tuple[InputFile, ...]
    shards: tuple[Shard, ...]

    @property
    def est_rows(self) -> int:
        return sum(s.est_rows for s in self.shards)


def _format_of(path: str, declared: str | None) -> InputFormat:
    if declared is not None:
        if declared not in FORMATS:
            raise ConfigError(
                f"Unknown input format {declared!r}; use one of: {', '.join(FORMATS)}."
            )
        return declared
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        raise ConfigError(
            f"Cannot tell the format of input file {path} from its suffix; name it "
            "*.parquet, *.csv or *.jsonl, or pass --input-format."
        )
    return FORMAT_BY_SUFFIX[suffix]


def find_input_files(source: str, declared: str | None) -> list[tuple[str, InputFormat]]:
    """The files of ``source`` (a file, a directory or a glob) in a stable, sorted order."""
    if any(ch in source for ch in "*?["):
        paths = sorted(p for p in globlib.glob(source, recursive=True) if os.path.isfile(p))
        what = f"the glob {source!r}"
    elif os.path.isdir(source):
        paths = sorted(
            str(p)
            for p in Path(source).rglob("*")
            if p.is_file()
            and not any(part.startswith((".", "_")) for part in p.relative_to(source).parts)
            and (declared is not None or p.suffix.lower() in FORMAT_BY_SUFFIX)
        )
        what = f"the directory {source}"
    elif os.path.isfile(source):
        paths = [source]
        what = source
    else:
        raise InvalidInputError(
            f"Input {source} does not exist: give a file, a directory or a glob."
        )
    if not paths:
        raise InvalidInputError(f"No input files in {what}.")
    files = [(os.path.abspath(p), _format_of(p, declared)) for p in paths]
    formats = {f for _, f in files}
    if len(formats) > 1:
        raise InvalidInputError(
            f"{what} mixes formats ({', '.join(sorted(formats))}); point --input at one kind."
        )
    return files


def _parquet_shards(
    path: str, first: int, file_index: int, shard_rows: int
) -> tuple[list[Shard], bytes]:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except Exception as err:
        raise InvalidInputError(f"Cannot read Parquet file {path}: {err}") from err
    shards: list[Shard] = []
    groups: list[int] = []
    group_start = row = 0

    def flush() -> None:
        if groups:
            rows = row - group_start
            shards.append(
                Shard(
                    first + len(shards),
                    file_index,
                    group_start,
                    row,
                    tuple(groups),
                    group_start,
                    rows,
                )
            )

    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if n == 0:
            continue
        if n > shard_rows * 4:
            # Only a huge row group is cut: a piece starting mid-group decodes (and
            # drops) the rows before it, a cost worth paying only to use every core.
            flush()
            groups, group_start = [], row
            pieces = -(-n // (shard_rows * 2))
            step = -(-n // pieces)
            for lo in range(0, n, step):
                hi = min(n, lo + step)
                idx = first + len(shards)
                shards.append(Shard(idx, file_index, row + lo, row + hi, (g,), row, hi - lo))
            row += n
            group_start = row
            continue
        if groups and row + n - group_start > shard_rows:
            flush()
            groups, group_start = [], row
        groups.append(g)
        row += n
    flush()
    return shards, schema.serialize().to_pybytes()


def _text_schema(path: str, fmt: InputFormat) -> tuple[bytes, int]:
    """Infer the column types of a text file from its first block; return (schema, data start)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    with open(path, "rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    cut = sample.rfind(b"\n") + 1 if len(sample) == _SAMPLE_BYTES else len(sample)
    sample = sample[:cut] if cut else sample
    data_start = 0
    try:
        if fmt == "csv":
            header_end = sample.find(b"\n") + 1 or len(sample)
            data_start = header_end
            table = pcsv.read_csv(pa.py_buffer(sample))
        else:
            table = pjson.read_json(pa.py_buffer(sample))
    except pa.ArrowInvalid as err:
        if fmt == "jsonl" and "changed from" in str(err):
            # A column mixing numbers and strings: text, so the reader keeps going and
            # the bad cell is its row's error (``_lenient``).
            from shipyard.batch._lenient import infer_jsonl_schema

            return infer_jsonl_schema(sample).serialize().to_pybytes(), data_start
        raise InvalidInputError(
            f"Cannot parse {path} as {fmt.upper()} (first {len(sample)} bytes): {err}"
        ) from err
    return table.schema.serialize().to_pybytes(), data_start


def _line_start_after(fh: object, offset: int, size: int) -> int:
    """The offset just after the first newline at or past ``offset`` (or ``size``)."""
    read = fh.read  # type: ignore[attr-defined]
    fh.seek(offset)  # type: ignore[attr-defined]
    pos = offset
    while pos < size:
        chunk: bytes = read(64 * 1024)
        if not chunk:
            break
        nl = chunk.find(b"\n")
        if nl >= 0:
            return pos + nl + 1
        pos += len(chunk)
    return size


def _text_shards(
    info: InputFile, first: int, file_index: int, shard_bytes: int, bytes_per_row: float
) -> list[Shard]:
    shards: list[Shard] = []
    start = info.data_start
    with open(info.path, "rb") as fh:
        while start < info.size:
            end = (
                info.size
                if info.size - start <= shard_bytes * 3 // 2
                else _line_start_after(fh, start + shard_bytes, info.size)
            )
            est = max(1, round((end - start) / bytes_per_row))
            shards.append(Shard(first + len(shards), file_index, start, end, est_rows=est))
            start = end
    return shards


def _bytes_per_row(path: str, data_start: int) -> float:
    with open(path, "rb") as fh:
        fh.seek(data_start)
        sample = fh.read(_SAMPLE_BYTES)
    lines = sample.count(b"\n") or 1
    return max(1.0, len(sample) / lines)


def make_plan(
    source: str,
    *,
    input_format: str | None = None,
    shard_rows: int = 1 << 18,
    shard_bytes: int = 64 << 20,
) -> Plan:
    """Discover the input files of ``source`` and cut them into shards, in input order."""
    files: list[InputFile] = []
    shards: list[Shard] = []
    for index, (path, fmt) in enumerate(find_input_files(source, input_format)):
        st = os.stat(path)
        if fmt == "parquet":
            new, schema = _parquet_shards(path, len(shards), index, shard_rows)
            files.append(InputFile(path, fmt, st.st_size, st.st_mtime_ns, schema))
        else:
            schema, data_start = _text_schema(path, fmt)
            info = InputFile(path, fmt, st.st_size, st.st_mtime_ns, schema, data_start)
            files.append(info)
            new = _text_shards(
                info, len(shards), index, shard_bytes, _bytes_per_row(path, data_start)
            )
        shards.extend(new)
    return Plan(tuple(files), tuple(shards))
