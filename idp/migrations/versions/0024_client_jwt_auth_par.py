"""Clients authenticate with JWTs and sign request objects (RFC 7523, OIDC Core §9, RFC 9101):
their keys (jwks by value or jwks_uri), the signing algorithm, the encrypted secret of a
client_secret_jwt client and require_pushed_authorization_requests (RFC 9126); the JWT IDs
already used (used_jtis) and the pushed authorization requests

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("jwks_uri", sa.String(length=2048), nullable=True))
        batch_op.add_column(
            sa.Column("token_endpoint_auth_signing_alg", sa.String(length=16), nullable=True)
        )
        batch_op.add_column(sa.Column("secret_encrypted", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "require_pushed_authorization_requests",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    op.create_table(
        "used_jtis",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_used_jtis_expires_at", "used_jtis", ["expires_at"], unique=False)
    op.create_table(
        "pushed_authorization_requests",
        sa.Column("uri_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("uri_hash"),
    )
    op.create_index(
        "ix_pushed_authorization_requests_expires_at",
        "pushed_authorization_requests",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_pushed_authorization_requests_expires_at", table_name="pushed_authorization_requests"
    )
    op.drop_table("pushed_authorization_requests")
    op.drop_index("ix_used_jtis_expires_at", table_name="used_jtis")
    op.drop_table("used_jtis")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("require_pushed_authorization_requests")
        batch_op.drop_column("secret_encrypted")
        batch_op.drop_column("token_endpoint_auth_signing_alg")
        batch_op.drop_column("jwks_uri")
        batch_op.drop_column("jwks")
