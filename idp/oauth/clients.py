"""Applications (RFC 6749 §2) as Authlib sees them, with a short per-worker cache.

``ClientInfo`` is an immutable snapshot, so a cached client can be shared by threads and never
goes stale mid-request. Redirect URIs match exactly, except the port of a native app's loopback
URI (RFC 8252 §7.3).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.connections.service import client_connections
from idp.core.crypto import SecretBox
from idp.oauth.models import Client, ClientGrant

APP_TYPES = ("regular_web", "spa", "native", "m2m")
PUBLIC_TYPES = ("spa", "native")
GRANT_TYPES_BY_APP = {
    "regular_web": ["authorization_code", "refresh_token"],
    "spa": ["authorization_code", "refresh_token"],
    "native": ["authorization_code", "refresh_token"],
    "m2m": ["client_credentials"],
}
_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")


def _loopback_match(registered: str, requested: str) -> bool:
    reg, req = urlsplit(registered), urlsplit(requested)
    if reg.scheme != "http" or req.scheme != "http":
        return False
    reg_host = reg.netloc.rsplit(":", 1)[0] if not reg.netloc.endswith("]") else reg.netloc
    req_host = req.netloc.rsplit(":", 1)[0] if not req.netloc.endswith("]") else req.netloc
    if reg_host not in _LOOPBACK_HOSTS or req_host != reg_host:
        return False
    try:
        _ = req.port  # raises on a malformed port
    except ValueError:
        return False
    return (reg.path, reg.query, reg.fragment) == (req.path, req.query, req.fragment) and (
        "@" not in req.netloc
    )


@dataclass(frozen=True)
class ClientInfo(ClientMixin):
    client_id: str
    name: str
    app_type: str
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    first_party: bool
    secret_digest: str | None = field(repr=False)
    box: SecretBox = field(repr=False, compare=False)
    # audience -> scopes this (m2m) client may obtain
    client_grants: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    mfa_policy: str | None = None  # overrides the tenant's MFA_POLICY when set
    # names of the connections enabled for this app, in login-page order (cached with it, so
    # a login reads no more than the client)
    connections: tuple[str, ...] = ()

    @property
    def is_public(self) -> bool:
        return self.app_type in PUBLIC_TYPES

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OAuth 2.1 §2.3.2 allows a default with one registered URI, but OIDC Core §3.1.2.1
        # requires redirect_uri; we require it always, so no request is ever guessed.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(dict.fromkeys((scope or "").split()))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        if self.app_type == "native":
            return any(_loopback_match(reg, redirect_uri) for reg in self.redirect_uris)
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_digest is None:
            return False
        return self.box.verify(client_secret, self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class ClientDirectory:
    """Looks clients up, caching each snapshot for ``ttl`` seconds in this worker."""

    def __init__(self, box: SecretBox, ttl: float, session: Callable[[], Session]) -> None:
        self._session = session
        self._box = box
        self._ttl = ttl
        self._cache: dict[str, tuple[float, ClientInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str) -> ClientInfo | None:
        if not client_id or len(client_id) > 64:
            return None
        now = time.monotonic()
        hit = self._cache.get(client_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        info = self._load(self._session(), client_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (now, info)
        return info

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def _load(self, session: Session, client_id: str) -> ClientInfo | None:
        row = session.get(Client, client_id)
        if row is None:
            return None
        grants = {
            g.audience: tuple(g.scopes)
            for g in session.scalars(select(ClientGrant).where(ClientGrant.client_id == client_id))
        }
        return ClientInfo(
            client_id=row.client_id,
            name=row.name,
            app_type=row.app_type,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            redirect_uris=tuple(row.redirect_uris),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
            grant_types=tuple(row.grant_types),
            first_party=row.first_party,
            mfa_policy=row.mfa_policy,
            secret_digest=row.secret_digest,
            box=self._box,
            client_grants=grants,
            connections=client_connections(session, client_id),
        )
