"""Database outputs through SQLAlchemy (SQLite, PostgreSQL): one table of predictions.

Workers write Parquet parts as for files; the coordinating process commits them to
the table in shard order, each shard's rows, rejected rows and its marker row in
``shipyard_batch_shards`` in ONE transaction. A resume reads the markers, so a shard is
in the table exactly once whatever moment the job was killed at. The table gets a
``_row`` column (the input row number) to read it back in input order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.batch._manifest import JobManifest
from shipyard.batch._output import Output
from shipyard.batch._shard import ROW_COLUMN
from shipyard.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import pyarrow as pa
    import sqlalchemy as sa

    from shipyard.batch._plan import Plan

__all__ = ["DatabaseOutput", "is_database_url"]

MARKERS = "shipyard_batch_shards"
_INSERT_CHUNK = 20_000


def is_database_url(value: str) -> bool:
    if "://" not in value:
        return False
    scheme = value.split("://", 1)[0].split("+", 1)[0].lower()
    return scheme in {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle"}


def _sql_type(field: pa.Field) -> Any:
    import pyarrow as pa
    import sqlalchemy as sa

    t = field.type
    if pa.types.is_boolean(t):
        return sa.Boolean()
    if pa.types.is_integer(t):
        return sa.BigInteger()
    if pa.types.is_floating(t):
        return sa.Float(precision=53)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return sa.Text()
    if pa.types.is_timestamp(t):
        return sa.DateTime(timezone=t.tz is not None)
    if pa.types.is_date(t):
        return sa.Date()
    return sa.Text()  # anything else is stored as JSON text


class DatabaseOutput(Output):
    part_format = "parquet"
    row_numbers = True

    def __init__(self, url: str, table: str, staging_dir: str | None) -> None:
        import sqlalchemy as sa

        try:
            self.url = sa.engine.make_url(url)
        except sa.exc.ArgumentError as err:
            raise ConfigError(f"Cannot parse the database URL {url!r}: {err}") from err
        self.engine = sa.create_engine(self.url)
        self.table_name = table
        self.rejects_table = f"{table}_rejects"
        self.location = f"{self.url.render_as_string(hide_password=True)} table {table}"
        if staging_dir is not None:
            self.staging = Path(staging_dir).absolute()
        elif self.url.get_backend_name() == "sqlite" and self.url.database not in (
            None,
            "",
            ":memory:",
        ):
            db = Path(self.url.database).absolute()
            self.staging = db.with_name(f"{db.name}.{table}.partial")
        else:
            self.staging = Path.cwd() / f".shipyard-batch-{table}.partial"
        self.committed: dict[int, int] = {}
        """Committed shard index -> end row (exclusive), from the marker table."""
        self._table: sa.Table | None = None

    # -- state ---------------------------------------------------------------------------
    def _markers(self) -> sa.Table:
        import sqlalchemy as sa

        return sa.Table(
            MARKERS,
            sa.MetaData(),
            sa.Column("table_name", sa.String(255), primary_key=True),
            sa.Column("shard", sa.Integer, primary_key=True),
            sa.Column("shard_key", sa.Text, nullable=False),
            sa.Column("row_start", sa.BigInteger, nullable=False),
            sa.Column("row_end", sa.BigInteger, nullable=False),
            sa.Column("rows", sa.BigInteger, nullable=False),
            sa.Column("rejected", sa.BigInteger, nullable=False),
        )

    def _has_table(self, name: str) -> bool:
        import sqlalchemy as sa

        try:
            return sa.inspect(self.engine).has_table(name)
        except sa.exc.SQLAlchemyError as err:
            raise StoreError(f"Cannot reach the database {self.location}: {err}") from err

    def exists(self) -> bool:
        return self._has_table(self.table_name)

    def clear(self) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            for name in (self.table_name, self.rejects_table):
                sa.Table(name, sa.MetaData()).drop(conn, checkfirst=True)
            if self._has_table(MARKERS):
                markers = self._markers()
                conn.execute(markers.delete().where(markers.c.table_name == self.table_name))
        if self.staging.exists():
            shutil.rmtree(self.staging)

    def prepare(self) -> None:
        super().prepare()
        self._markers().create(self.engine, checkfirst=True)

    def reconcile(self, manifest: JobManifest) -> None:
        import sqlalchemy as sa

        markers = self._markers()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(markers.c.shard, markers.c.shard_key, markers.c.row_end).where(
                    markers.c.table_name == self.table_name
                )
            ).all()
        for shard, key, row_end in rows:
            record = manifest.done.get(shard)
            if record is None or record.key != key:
                raise ConfigError(
                    f"Shard {shard} in {self.location} was written from input that has "
                    "changed since; pass --overwrite to start over."
                )
            self.committed[shard] = row_end
        for index, record in list(manifest.done.items()):
            if index in self.committed:
                continue
            if record.part and not (self.staging / record.part).exists():
                del manifest.done[index]  # part lost: redo the shard

    # -- committing ----------------------------------------------------------------------
    def _ensure_table(self, conn: sa.Connection, schema: pa.Schema) -> sa.Table:
        import sqlalchemy as sa

        if self._table is None:
            md = sa.MetaData()
            cols = [sa.Column(ROW_COLUMN, sa.BigInteger, nullable=False)]
            cols += [sa.Column(f.name, _sql_type(f)) for f in schema if f.name != ROW_COLUMN]
            self._table = sa.Table(self.table_name, md, *cols)
            self._table.create(conn, checkfirst=True)
        return self._table

    def _rejects_tbl(self, conn: sa.Connection) -> sa.Table:
        import sqlalchemy as sa

        tbl = sa.Table(
            self.rejects_table,
            sa.MetaData(),
            sa.Column(ROW_COLUMN, sa.BigInteger, nullable=False),
            sa.Column("file", sa.Text),
            sa.Column("file_row", sa.BigInteger),
            sa.Column("error", sa.Text),
            sa.Column("data", sa.Text),
        )
        tbl.create(conn, checkfirst=True)
        return tbl

    def _commit(self, plan: Plan, manifest: JobManifest, index: int, row_start: int) -> int:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
        import sqlalchemy as sa

        record = manifest.done[index]
        row_end = row_start + record.rows + record.rejected
        try:
            with self.engine.begin() as conn:
                if record.part:
                    pf = pq.ParquetFile(self.staging / record.part)
                    tbl = self._ensure_table(conn, pf.schema_arrow)
                    text_cols = {c.name for c in tbl.columns if isinstance(c.type, sa.Text)}
                    for batch in pf.iter_batches(batch_size=_INSERT_CHUNK):
                        rows = batch.set_column(
                            batch.schema.get_field_index(ROW_COLUMN),
                            ROW_COLUMN,
                            pc.add(batch.column(ROW_COLUMN), row_start),
                        ).to_pylist()
                        for col in text_cols:
                            for r in rows:
                                v = r.get(col)
                                if v is not None and not isinstance(v, str):
                                    r[col] = json.dumps(v, default=str)
                        conn.execute(tbl.insert(), rows)
                if record.rejects:
                    rej = self._rejects_tbl(conn)
                    with (self.staging / record.rejects).open(encoding="utf-8") as fh:
                        items = [json.loads(line) for line in fh]
                    conn.execute(
                        rej.insert(),
                        [
                            {
                                ROW_COLUMN: row_start + it["shard_row"],
                                "file": it["file"],
                                "file_row": it["row"],
                                "error": it["error"],
                                "data": json.dumps(it["values"], default=str),
                            }
                            for it in items
                        ],
                    )
                conn.execute(
                    self._markers().insert(),
                    {
                        "table_name": self.table_name,
                        "shard": index,
                        "shard_key": record.key,
                        "row_start": row_start,
                        "row_end": row_end,
                        "rows": record.rows,
                        "rejected": record.rejected,
                    },
                )
        except sa.exc.SQLAlchemyError as err:
            raise StoreError(
                f"Writing shard {index} ({plan.shards[index].describe(plan)}) to "
                f"{self.location} failed: {err}. The shard was rolled back; fix the "
                "database and run again with --resume."
            ) from err
        for name in (record.part, record.rejects):
            if name:
                (self.staging / name).unlink(missing_ok=True)
        return row_end

    def shard_done(self, plan: Plan, manifest: JobManifest) -> None:
        # Commit in shard order so the row numbers are known and the table fills in order.
        for shard in plan.shards:
            if shard.index in self.committed:
                continue
            if shard.index not in manifest.done:
                return
            start = self.committed[shard.index - 1] if shard.index else 0
            self.committed[shard.index] = self._commit(plan, manifest, shard.index, start)

    def close(self) -> None:
        self.engine.dispose()

    def finalize(self, plan: Plan, manifest: JobManifest) -> str | None:
        self.shard_done(plan, manifest)
        if self.staging.exists():
            shutil.rmtree(self.staging)
        if any(r.rejected for r in manifest.done.values()):
            return f"{self.url.render_as_string(hide_password=True)} table {self.rejects_table}"
        return None
