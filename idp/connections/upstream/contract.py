"""What the upstream leg takes and gives (its data types), apart from the package's entry
points so that every submodule can import them without importing the package back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class UpstreamError(Exception):
    """The upstream login failed. ``reason`` is a stable code for the tenant log
    (``upstream_error``, ``iss_mismatch``, ``bad_token_response``, ``bad_id_token``,
    ``unreachable``, ``bad_profile``, ...); ``description`` is safe to show to the user
    and to send to the application (no secret, no upstream body)."""

    def __init__(self, reason: str, description: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description
        self.detail = detail  # for the tenant log only (never tokens or secrets)


@dataclass(frozen=True)
class Settings:
    """How idp reaches upstreams (from the app config)."""

    allowed_networks: tuple[Any, ...] = ()  # CIDRs allowed although private (test upstreams)
    timeout: float = 5.0
    max_body: int = 256 * 1024


@dataclass(frozen=True)
class Started:
    """What :func:`begin` returns: where to send the browser, and what to keep until the
    callback (server side, in the interaction; never in the browser)."""

    url: str
    kept: dict[str, Any]
    # SAML's HTTP-POST binding: the fields the browser posts to ``url`` (a page with a
    # button, no script); None: a plain redirect to ``url``.
    form: dict[str, str] | None = None  # code_verifier, nonce, ... (JSON-serialisable)


@dataclass(frozen=True)
class UpstreamProfile:
    """The upstream account, verified."""

    user_id: str  # the upstream's stable id (OIDC: sub; oauth2: the mapped user_id), a string
    email: str | None
    email_verified: bool  # True only when the upstream says so explicitly
    claims: dict[str, Any]  # OIDC standard claims mapped (name, given_name, picture, locale...)
    raw: dict[str, Any]  # the upstream profile as received (ID token claims + userinfo)
    tokens: dict[str, Any] = field(default_factory=dict)  # access/refresh/id token, expires_at
    amr: list[str] = field(default_factory=list)  # the upstream's amr, when it sent one
