"""A store that cannot be trusted, through the CLI as a user runs it: never re-initialised,
one line naming the file and the next step, the file left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shipyard.errors import StoreError
from shipyard.store import Store

from .conftest import one_red_line, shipyard


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_empty_store_file_is_refused_not_recreated(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    db = home / "store.db"
    db.touch()
    line = one_red_line(shipyard(home, "model-deployer", "models", "list"))
    assert str(db) in line and "empty (0 bytes)" in line and f"mv {db}" in line
    assert db.stat().st_size == 0  # nothing was written over it
    with pytest.raises(StoreError, match="Restore it from a backup"):
        Store.open()
    assert db.stat().st_size == 0


def test_a_damaged_store_is_one_line_and_left_as_it_is(home: Path) -> None:
    assert shipyard(home, "secret", "create", "a", "-v", "b").returncode == 0
    db = home / "store.db"
    data = bytearray(db.read_bytes())
    page = 4096
    # Keep the header page; every other page becomes garbage (a bad sector, a torn copy).
    data[page:] = hashlib.sha256(b"x").digest() * ((len(data) - page) // 32)
    db.write_bytes(bytes(data))
    before = _digest(db)
    for command in (("model-deployer", "models", "list"), ("secret", "list")):
        line = one_red_line(shipyard(home, *command))
        assert f"The store {db} is damaged" in line and ".recover" in line
        assert "Traceback" not in line
    assert _digest(db) == before
