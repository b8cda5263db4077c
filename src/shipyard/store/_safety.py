"""What the store does when its file or disk is not healthy: one line naming the file, the
cause and the next step, and never a silent re-initialisation.

* An existing ``store.db`` of 0 bytes (a truncated copy, a full disk during a restore) is
  refused: creating the schema again would forget every model server while they keep
  running.
* A damaged file (SQLite's ``SQLITE_CORRUPT``/``SQLITE_NOTADB``) is named, with the
  recovery command; nothing is written to it.
* A full disk is called a full disk (``SQLITE_FULL``, or an I/O error with no space left).
* A file or folder that cannot be written (``SQLITE_READONLY``/``SQLITE_CANTOPEN``, a
  full disk) is opened read-only: listing, describing, logs and ``stop`` still work.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import sqlalchemy as sa

from shipyard.errors import StoreError, StoreUnwritableError

__all__ = ["check_not_truncated", "database_error", "read_only_url", "sqlite_path"]

#: Below this many free bytes an I/O error on write is taken for a full disk.
_NEARLY_FULL = 1 << 20


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None (PostgreSQL, in-memory)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return None
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def read_only_url(path: Path) -> str:
    """A URL that reads ``path`` without creating or writing anything beside it (no
    ``-wal``/``-shm``): for a read-only folder or a full disk, where nobody can write."""
    return f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"


def check_not_truncated(path: Path) -> None:
    """Refuse an existing 0-byte store (the caller holds the migration lock, so a store
    being created by another process is never seen half-made)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        raise StoreError(
            f"The store {path} exists but is empty (0 bytes): it was truncated (a full "
            "disk, a crash during a copy). Shipyard does not create a new registry over "
            "it, as running model servers would be forgotten. Restore it from a backup; "
            f"or, to start an empty registry, move it away: mv {path} {path}.empty"
        )


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None


def database_error(err: sa.exc.DBAPIError, path: Path | None, shown: str) -> StoreError:
    """``err`` as one line: what is wrong with the store ``shown``, and the next step."""
    orig = err.orig
    name = str(getattr(orig, "sqlite_errorname", ""))
    where = str(path) if path is not None else shown
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreError(
            f"The store {where} is damaged ({orig}); nothing was written to it. Restore it "
            f"from a backup, or recover what can be read: sqlite3 {where} .recover | "
            f"sqlite3 {where}.recovered, then move {where}.recovered to {where}."
        )
    free = None if path is None else _free_bytes(path)
    if name == "SQLITE_FULL" or (
        name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN"))
        and free is not None
        and free < _NEARLY_FULL
    ):
        return StoreUnwritableError(
            f"The disk holding the store {where} is full ({orig}; "
            f"{'unknown' if free is None else f'{free // 1024} KiB'} free): nothing was "
            "written. Free some space and retry; reading commands (list, describe, logs) "
            "and stop still work."
        )
    if name.startswith("SQLITE_CANTOPEN") and path is not None and not path.parent.is_dir():
        return StoreError(
            f"Cannot open the store at {shown}: the folder {path.parent} does not exist. "
            "Check SHIPYARD_STORE_URL (or SHIPYARD_HOME)."
        )
    if name.startswith("SQLITE_READONLY") or (
        name.startswith("SQLITE_CANTOPEN")
        and path is not None
        and not os.access(path.parent, os.W_OK)
    ):
        return StoreUnwritableError(
            f"The store {where} cannot be written ({orig}): its file or folder is "
            "read-only. Reading commands (list, describe, logs) and stop still work; make "
            "it writable (permissions, a read-only mount) to change anything."
        )
    return StoreError(f"The store at {shown} failed: {orig}")
