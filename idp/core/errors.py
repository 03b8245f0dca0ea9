"""idp's error hierarchy: user-safe text for clients, detail kept for logs."""

from __future__ import annotations


class IdpError(Exception):
    """Base of every error idp raises on purpose; ``str()`` is safe to show a user."""


class ValidationError(IdpError):
    """Operator or API input that does not satisfy a rule."""


class NotFoundError(IdpError):
    """The named object does not exist."""


class ConflictError(IdpError):
    """The request contradicts the current state (HTTP 409 in an API), e.g. deleting something
    that others still depend on."""
