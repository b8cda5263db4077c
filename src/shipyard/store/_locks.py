"""Cross-process locks: a file lock next to a SQLite store, an advisory lock on PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shipyard.errors import StoreError

__all__ = ["named_lock"]


def _key(name: str) -> int:
    # PostgreSQL advisory locks take a signed 64-bit key.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"Timed out after {timeout:.0f}s waiting for the lock {path}; "
                        "another shipyard process holds it. Retry when it has finished."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        # Closing the descriptor releases the lock, also when the process dies.
        os.close(fd)


@contextlib.contextmanager
def _advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _key(name)})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
            conn.commit()


@contextlib.contextmanager
def named_lock(
    engine: Engine, lock_dir: Path | None, name: str, timeout: float = 600.0
) -> Iterator[None]:
    """Hold the lock ``name`` against every process that shares this store."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, name):
            yield
        return
    if lock_dir is None:
        raise StoreError(f"No lock directory for the store {engine.url!r}.")
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    with _file_lock(lock_dir / f"{digest}.lock", timeout):
        yield
