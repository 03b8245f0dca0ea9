"""Alembic environment: runs on the connection idp hands over (see idp/core/migrate.py)."""

from __future__ import annotations

from alembic import context

import idp.actions.models
import idp.audit.models
import idp.connections.models
import idp.consent.models
import idp.flows.models
import idp.identity.models
import idp.keys.models
import idp.mfa.models
import idp.mfa.push_models
import idp.oauth.models
import idp.protection.models  # noqa: F401 - registers the tables on Base.metadata
from idp.core.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
