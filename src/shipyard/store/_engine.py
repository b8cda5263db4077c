"""Engines that several processes can share safely.

SQLite: WAL (readers never block the writer), a busy timeout (a writer waits for the
lock instead of failing), and write transactions that take the write lock up front with
``BEGIN IMMEDIATE`` — a deferred transaction that upgrades from read to write can fail
with "database is locked" no matter the timeout, which is how writes get lost.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["BUSY_TIMEOUT_S", "WRITE_OPTION", "create_store_engine", "is_sqlite"]

#: Seconds a SQLite writer waits for another process's transaction to finish.
BUSY_TIMEOUT_S = 60.0

#: Execution option marking a connection whose transaction writes.
WRITE_OPTION = "shipyard_write"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_store_engine(url: str, read_only: bool = False) -> Engine:
    """An engine for ``url``, tuned for concurrent CLI processes when it is SQLite
    (``read_only``: a file opened with ``mode=ro``, whose journal mode stays as it is)."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level, so that we emit BEGIN ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
