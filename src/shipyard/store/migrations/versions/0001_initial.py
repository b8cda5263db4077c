"""Initial schema: flavors, components, stacks, settings, services.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_now = sa.func.current_timestamp()


def upgrade() -> None:
    op.create_table(
        "flavors",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
    )
    op.create_table(
        "components",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("flavor", sa.String(128), nullable=False),
        sa.Column("configuration", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
        sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
        sa.UniqueConstraint("name", "type", name="uq_components_name_type"),
    )
    op.create_table(
        "stacks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
        sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
    )
    op.create_table(
        "stack_components",
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
    op.create_table(
        "settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "services",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("deployer_id", sa.String(36), nullable=True),
        sa.Column("flavor", sa.String(128), nullable=False),
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
    op.create_index("ix_services_deployer_id", "services", ["deployer_id"])


def downgrade() -> None:
    op.drop_index("ix_services_deployer_id", table_name="services")
    op.drop_table("services")
    op.drop_table("settings")
    op.drop_table("stack_components")
    op.drop_table("stacks")
    op.drop_table("components")
    op.drop_table("flavors")
