"""MFA push approval: enrolment tickets, devices, challenges, device-token jti uses

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mfa_push_tickets",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("mfa_push_tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mfa_push_tickets_user_id"), ["user_id"], unique=False)

    op.create_table(
        "mfa_push_devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("factor_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["factor_id"], ["mfa_factors.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mfa_push_devices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_push_devices_factor_id"), ["factor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mfa_push_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "mfa_push_challenges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("interaction_uid", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("app", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("responded_at", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mfa_push_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_push_challenges_user_id"), ["user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mfa_push_challenges_interaction_uid"), ["interaction_uid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mfa_push_challenges_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "mfa_push_token_uses",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("mfa_push_token_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_push_token_uses_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    for table, columns in (
        ("mfa_push_token_uses", ["expires_at"]),
        ("mfa_push_challenges", ["expires_at", "interaction_uid", "user_id"]),
        ("mfa_push_devices", ["user_id", "factor_id"]),
        ("mfa_push_tickets", ["user_id"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
