"""interactions: one typed, versioned state (JSON) instead of params, prompt tags, completed_at
and data

Interactions live for minutes; rather than translate the tags of logins in flight, the table is
emptied and rebuilt. A browser that was in the middle of a login when the upgrade ran gets the
"login link expired" page and starts again from the application.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 04:10:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _create(with_state: bool) -> None:
    columns: list[sa.Column[Any]] = [
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
    ]
    if with_state:
        columns.append(sa.Column("state", sa.JSON(), nullable=False))
    else:
        columns += [
            sa.Column("params", sa.JSON(), nullable=False),
            sa.Column("prompt", sa.String(length=32), nullable=False),
            sa.Column("completed_at", sa.Integer(), nullable=True),
            sa.Column("data", sa.JSON(), nullable=True),
        ]
    op.create_table("interactions", *columns, sa.PrimaryKeyConstraint("uid"))
    op.create_index("ix_interactions_browser_hash", "interactions", ["browser_hash"])
    op.create_index("ix_interactions_expires_at", "interactions", ["expires_at"])


def upgrade() -> None:
    op.drop_table("interactions")
    _create(with_state=True)


def downgrade() -> None:
    op.drop_table("interactions")
    _create(with_state=False)
