"""Users gain ``blocked``: an operator's block (Auth0's ``blocked`` on the user, set through
PATCH /api/v2/users/{id}), which refuses every login and token refresh until it is lifted.
Not the brute-force block, which is per account and IP and expires (idp.protection)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("blocked")
