"""Pipeline runs, step runs and artifacts (declared in ``shipyard.store._schema``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline_name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("ended", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_metadata", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_pipeline_runs_pipeline_name", "pipeline_runs", ["pipeline_name"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=True),
        sa.Column("ended", sa.DateTime(), nullable=True),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cached_from", sa.String(32), nullable=True),
        sa.Column("params", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("inputs", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("step_metadata", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
    )
    op.create_index("ix_step_runs_run_id", "step_runs", ["run_id"])
    op.create_index("ix_step_runs_cache_key", "step_runs", ["cache_key"])
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "step_run_id",
            sa.String(32),
            sa.ForeignKey("step_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("output", sa.String(256), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("materializer", sa.String(128), nullable=False),
        sa.Column("data_type", sa.String(512), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_artifacts_step_run_id", "artifacts", ["step_run_id"])


def downgrade() -> None:
    op.drop_index("ix_artifacts_step_run_id", table_name="artifacts")
    op.drop_table("artifacts")
    op.drop_index("ix_step_runs_cache_key", table_name="step_runs")
    op.drop_index("ix_step_runs_run_id", table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index("ix_pipeline_runs_pipeline_name", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
