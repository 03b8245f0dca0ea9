"""The WebAuthn attestation trust store: the imported FIDO Metadata Service (MDS3) blob
(idp.mfa.attestation_models, ``idp mfa mds import``).

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webauthn_metadata",
        sa.Column("id", sa.String(length=8), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("next_update", sa.String(length=10), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("signer", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("webauthn_metadata")
