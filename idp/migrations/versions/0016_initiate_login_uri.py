"""Applications may name an initiate_login_uri (OIDC Core §4, Registration §2): where idp
sends a browser to have the app start a login itself (IdP-initiated SAML SSO lands there)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("initiate_login_uri", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("initiate_login_uri")
