"""Device authorizations (RFC 8628): one row per device authorization request, its device
code as a SHA-256 and its user code as a keyed digest only (idp.oauth.device_models).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_authorizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_code_digest", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=2048), nullable=False),
        sa.Column("audience", sa.String(length=512), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("auth_time", sa.Integer(), nullable=True),
        sa.Column("amr", sa.JSON(), nullable=True),
        sa.Column("acr", sa.String(length=255), nullable=True),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("action_effects", sa.JSON(), nullable=True),
        sa.Column("decided_at", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_code_hash"),
        sa.UniqueConstraint("user_code_digest"),
    )
    op.create_index("ix_device_authorizations_client_id", "device_authorizations", ["client_id"])
    op.create_index("ix_device_authorizations_expires_at", "device_authorizations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_device_authorizations_expires_at", table_name="device_authorizations")
    op.drop_index("ix_device_authorizations_client_id", table_name="device_authorizations")
    op.drop_table("device_authorizations")
