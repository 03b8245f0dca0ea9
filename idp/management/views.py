"""The management API's blueprint with every resource's routes registered on it."""

from __future__ import annotations

from idp.management import (
    actions,
    attack_protection,
    authentication_methods,
    bindings,
    branding,
    client_grants,
    clients,
    connections,
    guardian,
    identities,
    log_streams,
    logs,
    marketplace,
    openapi,
    resource_servers,
    signing_keys,
    stats,
    tenant_settings,
    user_enrollments,
    user_sessions,
    users,
)
from idp.management.base import bp

__all__ = [
    "actions",
    "attack_protection",
    "authentication_methods",
    "bindings",
    "bp",
    "branding",
    "client_grants",
    "clients",
    "connections",
    "guardian",
    "identities",
    "log_streams",
    "logs",
    "marketplace",
    "openapi",
    "resource_servers",
    "signing_keys",
    "stats",
    "tenant_settings",
    "user_enrollments",
    "user_sessions",
    "users",
]
