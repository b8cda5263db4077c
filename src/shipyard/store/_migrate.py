"""Bring a store's schema to the newest migration and give a fresh store its defaults."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shipyard.store import _schema as t
from shipyard.store._engine import WRITE_OPTION
from shipyard.store._rows import insert_component, insert_stack, set_setting

__all__ = ["DEFAULT_NAME", "current_revision", "upgrade"]

#: Name of the stack (and of its components) a fresh home starts with.
DEFAULT_NAME = "default"

_BOOTSTRAPPED = "bootstrapped"
ACTIVE_STACK = "active_stack"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])


def is_bootstrapped(engine: Engine) -> bool:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.settings.c.value).where(t.settings.c.key == _BOOTSTRAPPED))
        return row.first() is not None


def _run_alembic(engine: Engine) -> None:
    # Imported only when the schema is behind: a current store costs no Alembic import.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()


def _bootstrap(engine: Engine) -> None:
    """The default stack: local artifact store, local orchestrator, local model deployer."""
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        done = conn.execute(
            sa.select(t.settings.c.value).where(t.settings.c.key == _BOOTSTRAPPED)
        ).first()
        if done is not None:
            return
        kinds = ("artifact_store", "orchestrator", "model_deployer")
        ids = {kind: insert_component(conn, DEFAULT_NAME, kind, "local", {}) for kind in kinds}
        insert_stack(conn, DEFAULT_NAME, ids)
        set_setting(conn, ACTIVE_STACK, DEFAULT_NAME)
        set_setting(conn, _BOOTSTRAPPED, "1")


def upgrade(engine: Engine) -> None:
    """Migrate to head and bootstrap; the caller holds the store's migration lock."""
    if current_revision(engine) != t.HEAD_REVISION:
        _run_alembic(engine)
    _bootstrap(engine)
