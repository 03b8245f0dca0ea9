"""The app_metadata index of the users search: one row per user and searchable top-level
app_metadata key with its value's digest (idp.identity.models.UserMetadataTerm), filled here
from the users already stored

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import hashlib
import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# Frozen copies of idp.identity.models' rules as of this revision: a migration must not change
# when the application code does.
KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")
BATCH = 2000


def _digest(value: object) -> str | None:
    if isinstance(value, bool):
        text = "b:" + ("true" if value else "false")
    elif isinstance(value, int | float):
        text = "n:" + repr(float(value))
    elif isinstance(value, str):
        text = "s:" + value
    else:
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def upgrade() -> None:
    terms = op.create_table(
        "user_metadata_terms",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "key"),
    )
    op.create_index(
        "ix_user_metadata_terms_lookup", "user_metadata_terms", ["key", "digest", "user_id"]
    )
    bind = op.get_bind()
    page = sa.text("SELECT id, app_metadata FROM users WHERE id > :last ORDER BY id LIMIT :n")
    last = ""
    while batch := bind.execute(page, {"last": last, "n": BATCH}).all():
        last, rows = batch[-1][0], []
        for user_id, stored in batch:
            metadata = json.loads(stored) if isinstance(stored, str) else stored
            for key, value in (metadata or {}).items():
                digest = _digest(value)
                if digest is not None and KEY.fullmatch(key):
                    rows.append({"user_id": user_id, "key": key, "digest": digest})
        if rows:
            bind.execute(sa.insert(terms), rows)


def downgrade() -> None:
    op.drop_index("ix_user_metadata_terms_lookup", table_name="user_metadata_terms")
    op.drop_table("user_metadata_terms")
