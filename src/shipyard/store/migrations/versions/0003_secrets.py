"""Secrets: encrypted values referenced as ``{{secret.name}}`` (see ``shipyard.secrets``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_now = sa.func.current_timestamp()


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False, server_default=_now),
        sa.Column("updated", sa.DateTime(), nullable=False, server_default=_now),
    )


def downgrade() -> None:
    op.drop_table("secrets")
