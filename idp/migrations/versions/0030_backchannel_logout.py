"""Back-channel logout (OIDC Back-Channel Logout 1.0): a client's backchannel_logout_uri and
backchannel_logout_session_required, and the backchannel_logouts delivery table

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("backchannel_logout_uri", sa.String(length=2048)))
        batch.add_column(
            sa.Column(
                "backchannel_logout_session_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    op.create_table(
        "backchannel_logouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("retry_at", sa.Float(), nullable=False),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("leased_until", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "sid"),
    )
    op.create_index("ix_backchannel_logouts_due", "backchannel_logouts", ["status", "retry_at"])


def downgrade() -> None:
    op.drop_index("ix_backchannel_logouts_due", table_name="backchannel_logouts")
    op.drop_table("backchannel_logouts")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("backchannel_logout_session_required")
        batch.drop_column("backchannel_logout_uri")
