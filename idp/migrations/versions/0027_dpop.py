"""DPoP (RFC 9449): clients.dpop_bound_access_tokens (§5.2: every token request carries a
proof) and refresh_tokens.dpop_jkt (§5: a public client's refresh token bound to its key).
Proof jti values go to used_jtis (0024).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 09:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "dpop_bound_access_tokens",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("dpop_bound_access_tokens")
