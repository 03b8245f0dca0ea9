"""Alembic environment: runs on the connection idp hands over (see idp/core/migrate.py)."""

from __future__ import annotations

from alembic import context

import idp.actions.models
import idp.audit.models
import idp.connections.models
import idp.consent.models
import idp.console.models
import idp.flows.models
import idp.identity.models
import idp.keys.models
import idp.logstreams.models
import idp.mfa.attestation_models
import idp.mfa.models
import idp.mfa.push_models
import idp.mfa.webpush_models
import idp.oauth.device_models
import idp.oauth.models
import idp.oauth.registration_models
import idp.protection.models
import idp.tenant.models  # noqa: F401 - registers the tables on Base.metadata
from idp.core.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
