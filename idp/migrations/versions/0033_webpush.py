"""Web Push for push devices: the instance's VAPID key (RFC 8292) and the devices' push
subscriptions (idp.mfa.webpush_models).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 12:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mfa_vapid_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=128), nullable=False),
        sa.Column("private_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "mfa_webpush_subscriptions",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=1024), nullable=False),
        sa.Column("p256dh", sa.String(length=128), nullable=False),
        sa.Column("auth", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("last_sent_at", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["mfa_push_devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_index(
        "ix_mfa_webpush_subscriptions_user_id", "mfa_webpush_subscriptions", ["user_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_mfa_webpush_subscriptions_user_id", "mfa_webpush_subscriptions")
    op.drop_table("mfa_webpush_subscriptions")
    op.drop_table("mfa_vapid_keys")
