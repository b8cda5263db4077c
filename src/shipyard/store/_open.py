"""Opening a store: a private home, the schema brought to head (never over an existing
file), and a read-only engine when nothing can be written (``_safety``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shipyard.config import Settings
from shipyard.errors import StoreError, StoreUnwritableError
from shipyard.store import _schema as t
from shipyard.store._engine import create_store_engine
from shipyard.store._locks import named_lock
from shipyard.store._migrate import current_revision, is_bootstrapped, upgrade
from shipyard.store._safety import check_not_truncated, database_error, read_only_url, sqlite_path

__all__ = ["make_private", "open_engine", "prepare_home"]

_MIGRATION_LOCK = "store-migration"


def _masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (it goes to terminals and CI logs)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<unparsable SHIPYARD_STORE_URL>"


def _password(url: str) -> str | None:
    try:
        return sa.engine.make_url(url).password
    except (sa.exc.ArgumentError, ValueError):
        return None


def make_private(path: Path) -> None:
    """Owner-only access (0700 folders, 0600 files): the home holds the registry, service
    configs and logs. Only what we own is changed (a shared folder is left as it is)."""
    try:
        if path.stat().st_uid == os.getuid():
            path.chmod(0o700 if path.is_dir() else 0o600)
    except OSError:
        pass  # gone, not ours or read-only: nothing to tighten


def prepare_home(settings: Settings) -> Path | None:
    """Create SHIPYARD_HOME (0700) for a SQLite store; return its lock folder."""
    if settings.store_url:
        return None
    home = settings.home.expanduser()
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(home)
    except OSError as err:
        raise StoreError(
            f"Cannot create SHIPYARD_HOME at {home}: {err}. "
            "Set SHIPYARD_HOME to a writable directory."
        ) from err
    return home / "locks"


def _migrate(engine: Engine, lock_dir: Path | None, path: Path | None) -> None:
    """Create, migrate and bootstrap as needed; never over an existing file."""
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        # Under the lock: a store another process is creating is never seen half-made.
        lock = (
            named_lock(engine, lock_dir, _MIGRATION_LOCK)
            if lock_dir is not None
            else contextlib.nullcontext()
        )
        with lock:
            check_not_truncated(path)
            upgrade(engine)
        return
    if current_revision(engine) != t.HEAD_REVISION or not is_bootstrapped(engine):
        # Two processes opening a fresh home at once: one migrates, one waits.
        with named_lock(engine, lock_dir, _MIGRATION_LOCK):
            upgrade(engine)


def _read_only_engine(path: Path, why: StoreUnwritableError) -> Engine:
    engine = create_store_engine(read_only_url(path), read_only=True)
    try:
        current = current_revision(engine) == t.HEAD_REVISION and is_bootstrapped(engine)
    except sa.exc.DBAPIError as err:
        engine.dispose()
        raise why from err
    if not current:
        engine.dispose()
        raise why  # an old schema needs a migration, which needs writing
    return engine


def open_engine(
    settings: Settings, lock_dir: Path | None
) -> tuple[Engine, StoreUnwritableError | None]:
    """The store's engine, and why it is read-only (None when it can be written)."""
    url = settings.database_url
    shown = _masked(url)
    path = sqlite_path(url)
    try:
        engine = create_store_engine(url)
        try:
            _migrate(engine, lock_dir, path)
        except sa.exc.DBAPIError as err:
            failure = database_error(err, path, shown)
            engine.dispose()
            if not isinstance(failure, StoreUnwritableError) or path is None:
                raise failure from err
            # Nobody can write it now: read it as it is (list, describe, logs, stop).
            return _read_only_engine(path, failure), failure
        if lock_dir is not None:
            for item in (lock_dir, *settings.home.expanduser().glob("*.db*")):
                make_private(item)
        return engine, None
    except ImportError as err:
        raise StoreError(
            f"Cannot open the store at {shown}: its database driver is not installed "
            f"({err.name or err}). Supported: sqlite, postgresql+psycopg "
            "(pip install 'psycopg[binary]')."
        ) from err
    except (sa.exc.SQLAlchemyError, ValueError) as err:
        # The driver's message may quote the URL, password included: never print it.
        reason = str(err).replace(url, shown)
        password = _password(url)
        if password:
            reason = reason.replace(password, "***")
        raise StoreError(
            f"Cannot open the store at {shown}: {reason}. "
            "Check SHIPYARD_STORE_URL (or SHIPYARD_HOME)."
        ) from err
