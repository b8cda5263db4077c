"""Every table of the store (SQLAlchemy Core), pipeline runs included: the store owns them
all. Changing one needs a new Alembic migration."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "HEAD_REVISION",
    "artifacts",
    "components",
    "flavors",
    "metadata",
    "pipeline_runs",
    "secrets",
    "services",
    "settings",
    "stack_components",
    "stacks",
    "step_runs",
]

#: The newest migration; the store checks it on open so that a current database costs one
#: query and no Alembic import. A test pins it to Alembic's own head.
HEAD_REVISION = "0003"

metadata = sa.MetaData()

_now = sa.func.current_timestamp()

flavors = sa.Table(
    "flavors",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(64), primary_key=True),
    # "module:attribute" of a Flavor registered with --source.
    sa.Column("source", sa.String(512), nullable=False),
    sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
)

components = sa.Table(
    "components",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("flavor", sa.String(128), nullable=False),
    sa.Column("configuration", sa.Text(), nullable=False),
    sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
    sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
    sa.UniqueConstraint("name", "type", name="uq_components_name_type"),
)

stacks = sa.Table(
    "stacks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
    sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
)

stack_components = sa.Table(
    "stack_components",
    metadata,
    sa.Column(
        "stack_id",
        sa.String(36),
        sa.ForeignKey("stacks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("type", sa.String(64), primary_key=True),
    sa.Column(
        "component_id",
        sa.String(36),
        sa.ForeignKey("components.id", ondelete="RESTRICT"),
        nullable=False,
    ),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("uuid", sa.String(36), primary_key=True),
    sa.Column("deployer_id", sa.String(36), nullable=True, index=True),
    sa.Column("flavor", sa.String(128), nullable=False),
    # "module:Class" of the Service subclass, to rebuild the live object.
    sa.Column("service_type", sa.String(512), nullable=False),
    sa.Column("pipeline_name", sa.String(256), nullable=False, server_default=""),
    sa.Column("pipeline_step_name", sa.String(256), nullable=False, server_default=""),
    sa.Column("pipeline_run_id", sa.String(256), nullable=False, server_default=""),
    sa.Column("model_name", sa.String(256), nullable=False, server_default=""),
    sa.Column("model_uri", sa.Text(), nullable=False, server_default=""),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
    sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
)

# -- pipeline runs (read and written by shipyard.pipelines through the store) -----------

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline_name", sa.String(256), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started", sa.DateTime(), nullable=False),
    sa.Column("ended", sa.DateTime(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("run_metadata", sa.Text(), nullable=False, server_default="{}"),
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "run_id",
        sa.String(32),
        sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started", sa.DateTime(), nullable=True),
    sa.Column("ended", sa.DateTime(), nullable=True),
    # Set only on runs whose outputs may be reused: never on deployer steps.
    sa.Column("cache_key", sa.String(64), nullable=True, index=True),
    sa.Column("cached_from", sa.String(32), nullable=True),
    sa.Column("params", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("inputs", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("step_metadata", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("traceback", sa.Text(), nullable=True),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "step_run_id",
        sa.String(32),
        sa.ForeignKey("step_runs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("output", sa.String(256), nullable=False),
    sa.Column("uri", sa.Text(), nullable=False),
    sa.Column("materializer", sa.String(128), nullable=False),
    sa.Column("data_type", sa.String(512), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False, server_default="{}"),
)

# -- secrets (read and written by shipyard.secrets through the store) --------------------

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    # Fernet token (encrypted and authenticated); the key lives outside the database.
    sa.Column("ciphertext", sa.Text(), nullable=False),
    sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
    sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
)
