"""File outputs: one Parquet/CSV/JSON-lines file, or a directory of parts in input order.

A directory output is its own staging area: ``part-00000.parquet``, ... (names sort in
input order), ``_manifest.json`` and ``_rejects.jsonl`` (underscore names are skipped
by pyarrow and pandas when they read the directory). A single-file output is staged in
``<file>.partial/`` and assembled into the file (temporary name, then rename) once
every shard is done.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.batch._manifest import MANIFEST_NAME, JobManifest
from shipyard.batch._plan import FORMAT_BY_SUFFIX, FORMATS
from shipyard.batch._shard import PartFormat
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.batch._plan import Plan

__all__ = ["OUTPUT_FORMATS", "FileOutput", "Output"]

OUTPUT_FORMATS = FORMATS


class Output:
    """Where results go; the job drives it. Subclasses: files here, tables in ``_db``."""

    location: str
    staging: Path
    part_format: PartFormat = "parquet"
    row_numbers: bool = False

    def exists(self) -> bool:
        raise NotImplementedError

    def clear(self) -> None:
        """Remove the output and any unfinished job (``--overwrite``)."""
        raise NotImplementedError

    def part_path(self, index: int) -> str:
        # Each format's name is also its file suffix.
        return str(self.staging / f"part-{index:05d}.{self.part_format}")

    def rejects_path(self, index: int) -> str:
        return str(self.staging / f"rejects-{index:05d}.jsonl")

    def prepare(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)

    def reconcile(self, manifest: JobManifest) -> None:
        """Before a resume: drop manifest entries the output does not hold."""

    def shard_done(self, plan: Plan, manifest: JobManifest) -> None:
        """Called after each shard is recorded in the manifest."""

    def finalize(self, plan: Plan, manifest: JobManifest) -> str | None:
        """Make the final output; return where rejected rows are, if any."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the output holds open (connections); called however the job ends."""


def _concat_jsonl(sources: list[Path], target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        for src in sources:
            with src.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


class FileOutput(Output):
    def __init__(self, path: str, fmt: str | None) -> None:
        target = Path(path).expanduser()
        suffix_fmt = FORMAT_BY_SUFFIX.get(target.suffix.lower())
        self.is_dir = suffix_fmt is None or path.endswith(os.sep) or target.is_dir()
        if fmt is not None and fmt not in OUTPUT_FORMATS:
            raise ConfigError(
                f"Unknown output format {fmt!r}; use one of: {', '.join(OUTPUT_FORMATS)}."
            )
        chosen: PartFormat = "parquet"
        if fmt is not None:
            chosen = fmt  # checked against OUTPUT_FORMATS above
        elif not self.is_dir and suffix_fmt is not None:
            chosen = suffix_fmt
        self.part_format = chosen
        self.target = target.absolute()
        self.location = str(self.target)
        if self.is_dir:
            self.staging = self.target
            self.rejects_file = self.target / "_rejects.jsonl"
        else:
            self.staging = self.target.with_name(self.target.name + ".partial")
            self.rejects_file = self.target.with_name(self.target.stem + ".rejects.jsonl")

    def rejects_path(self, index: int) -> str:
        if self.is_dir:
            return str(self.staging / "_rejects" / f"rejects-{index:05d}.jsonl")
        return super().rejects_path(index)

    def prepare(self) -> None:
        super().prepare()
        if self.is_dir:
            (self.staging / "_rejects").mkdir(exist_ok=True)

    def exists(self) -> bool:
        if self.is_dir:
            return self.target.exists() and any(self.target.iterdir())
        return self.target.exists()

    def clear(self) -> None:
        if self.target.is_dir():
            shutil.rmtree(self.target)
        elif self.target.exists():
            self.target.unlink()
        if not self.is_dir and self.staging.exists():
            shutil.rmtree(self.staging)
        self.rejects_file.unlink(missing_ok=True)

    def finalize(self, plan: Plan, manifest: JobManifest) -> str | None:
        records = [manifest.done[s.index] for s in plan.shards]
        parts = [self.staging / r.part for r in records if r.part]
        rejects = [
            Path(self.rejects_path(s.index)) for s in plan.shards if records[s.index].rejects
        ]
        if rejects:
            _concat_jsonl(rejects, self.rejects_file)
        else:
            self.rejects_file.unlink(missing_ok=True)
        if self.is_dir:
            keep = {p.name for p in parts} | {MANIFEST_NAME, self.rejects_file.name}
            for leftover in self.staging.iterdir():
                if leftover.name not in keep:
                    if leftover.is_dir():
                        shutil.rmtree(leftover)
                    else:
                        leftover.unlink()
            manifest.complete = True
            manifest.write(self.staging)
        else:
            self._assemble(parts)
            shutil.rmtree(self.staging)
        return str(self.rejects_file) if rejects else None

    def _assemble(self, parts: list[Path]) -> None:
        tmp = self.target.with_name(self.target.name + ".tmp")
        if self.part_format == "parquet":
            self._assemble_parquet(parts, tmp)
        else:
            with tmp.open("wb") as out:
                for i, part in enumerate(parts):
                    with part.open("rb") as fh:
                        if self.part_format == "csv" and i > 0:
                            fh.readline()  # each CSV part has its own header
                        shutil.copyfileobj(fh, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, self.target)

    @staticmethod
    def _assemble_parquet(parts: list[Path], tmp: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not parts:
            pq.write_table(pa.table({}), tmp)
            return
        schema = pq.read_schema(parts[0])
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                pf = pq.ParquetFile(part)
                for g in range(pf.num_row_groups):
                    table = pf.read_row_group(g)
                    if table.schema != schema:
                        try:
                            table = table.cast(schema)
                        except (pa.ArrowInvalid, ValueError) as err:
                            raise ConfigError(
                                f"Output part {part} has columns {table.schema} that do not "
                                f"fit the first part's {schema}: {err}. The predictor's "
                                "output must keep its types; write a directory output instead."
                            ) from err
                    writer.write_table(table)
