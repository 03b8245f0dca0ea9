"""Applications (RFC 6749 §2) as Authlib sees them, with a short per-worker cache.

``ClientInfo`` is an immutable snapshot, so a cached client can be shared by threads and never
goes stale mid-request. Redirect URIs match exactly, except the port of a native app's loopback
URI (RFC 8252 §7.3).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from idp.connections.models import Connection, ConnectionClient
from idp.core.crypto import SecretBox
from idp.core.versions import CLIENTS, Versions
from idp.oauth.device_models import DEVICE_GRANT
from idp.oauth.models import Client, ClientGrant
from idp.oauth.subjects import sector_of

APP_TYPES = ("regular_web", "spa", "native", "m2m")
PUBLIC_TYPES = ("spa", "native")
# RFC 8693, opt-in
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
# What each type may be allowed; a new client gets its type's list without the opt-in ones.
GRANT_TYPES_BY_APP = {
    "regular_web": ["authorization_code", "refresh_token", TOKEN_EXCHANGE, DEVICE_GRANT],
    "spa": ["authorization_code", "refresh_token"],
    "native": ["authorization_code", "refresh_token", DEVICE_GRANT],
    "m2m": ["client_credentials", TOKEN_EXCHANGE],
}
OPT_IN_GRANT_TYPES = (TOKEN_EXCHANGE, DEVICE_GRANT)  # DEVICE_GRANT: RFC 8628 (idp.oauth.device)
_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
CACHE_CAPACITY = 10_000  # client snapshots per worker


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
    initiate_login_uri: str | None = None  # OIDC Core §4 (third-party initiated login)
    subject_type: str = "public"  # OIDC Core §8 (idp.oauth.subjects)
    sector: str | None = None  # the pairwise sector identifier, a host (§8.1)
    # RFC 7523 / RFC 9101 keys (idp.oauth.client_keys) and client_secret_jwt's secret
    jwks: dict[str, Any] | None = field(default=None, compare=False)
    jwks_uri: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    secret_encrypted: bytes | None = field(default=None, repr=False)
    require_pushed_authorization_requests: bool = False  # RFC 9126 §6
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: every token request has a proof
    id_token_signed_response_alg: str | None = None  # OIDC Registration §2; None: RS256

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
    """Looks clients up, caching each snapshot in this worker until the ``clients`` version
    moves (a change committed by any worker or instance, :mod:`idp.core.versions`), for at
    most ``max_age`` seconds while the versions are read from their source, and ``ttl``
    seconds when they cannot be (Redis unreachable: the backstop; ``ttl`` 0: no cache), nor
    for a snapshot loaded before an outage of theirs (a change made during it may have moved
    no version: its bump failed, and Redis then answers with the version of before). A
    client asking less often than every ``ttl`` (a machine client every few minutes, one of
    thousands) is thus a hit at a worker that served it before, as with Keycloak's invalidated
    client cache, where the 5 s lifetime alone made it a miss each time. At
    most ``capacity`` snapshots (~1.4 KB each for a seeded client: 10,000 add ~14 MB to a
    worker); beyond it the least recently used goes (snapshots live up to an hour, so a busy
    client must not be dropped for having been loaded first)."""

    def __init__(
        self, box: SecretBox, ttl: float, session: Callable[[], Session],
        builtins: dict[str, ClientInfo] | None = None, versions: Versions | None = None,
        capacity: int = CACHE_CAPACITY, max_age: float = 0.0,
    ) -> None:  # fmt: skip
        self._capacity = capacity
        self._max_age = max_age if ttl > 0 else 0.0
        self._builtins = dict(builtins or {})  # idp's own clients (the console), never stored
        self._session = session
        self._box = box
        self._ttl = ttl
        # client id -> (loaded at, snapshot, the versions' outages then or -1: unverified)
        self._cache: OrderedDict[str, tuple[float, ClientInfo | None, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._versions = versions
        self._seen = versions.current(CLIENTS) if versions else ""
        # moves with every clear: a snapshot loaded across a clear is not stored (it may
        # predate the change that caused the clear, and would outlive it for a whole ttl)
        self._generation = 0

    def get(self, client_id: str) -> ClientInfo | None:
        if not client_id or len(client_id) > 64:
            return None
        if client_id in self._builtins:
            return self._builtins[client_id]
        if self._versions is not None:
            # read before any load: a change committed meanwhile moves it again (a reload)
            version = self._versions.current(CLIENTS)
            if version != self._seen:
                with self._lock:
                    self._cache.clear()
                    self._generation += 1
                    self._seen = version
        now = time.monotonic()
        hit = self._cache.get(client_id)
        if hit is not None:
            age = now - hit[0]
            if age < self._ttl or (
                age < self._max_age
                and self._versions is not None
                and self._versions.verified()
                # no outage since it was loaded: a change made during one may have moved nothing
                and hit[2] == self._versions.outages()
            ):
                try:  # noqa: SIM105 - every token's path: a try costs less than suppress()
                    self._cache.move_to_end(client_id)  # atomic (C); gone meanwhile: no matter
                except KeyError:
                    pass
                return hit[1]
        generation = self._generation
        versions = self._versions
        trust = versions.outages() if versions is not None and versions.verified() else -1
        info = self._load(self._session(), client_id)
        with self._lock:
            if generation != self._generation:
                return info  # a change was seen meanwhile: this copy is for this request only
            # re-inserted, not updated in place: the newest used at the end
            self._cache.pop(client_id, None)
            if len(self._cache) >= self._capacity:
                # the least recently used only: clearing all made a tenant with more clients
                # than the capacity reload every client after each capacity-th distinct one
                self._cache.popitem(last=False)
            self._cache[client_id] = (now, info, trust)
        return info

    def invalidate(self) -> None:
        """A client or grant changed (after the commit): this worker reloads at once, the
        others at their next version check."""
        with self._lock:
            self._cache.clear()
            self._generation += 1
        if self._versions is not None:
            self._versions.bump(CLIENTS)

    def _load(self, session: Session, client_id: str) -> ClientInfo | None:
        """The client, its grants and its enabled connections in one statement (outer joins:
        a few grants times a few connections rows), built once and run as Core: rebuilding
        it, its cache key and the ORM entity were 56 % of a miss's instructions.

        Before the request has a transaction (a client-credentials token touches the database
        for nothing else), on a pooled connection in autocommit: one statement sees one
        committed state on its own, and a miss then costs the pool's ping and the statement,
        not also a BEGIN and a COMMIT (4 round trips to 2). Within a transaction, on its
        connection, flushed first as ``session.execute`` would: the transaction's own changes
        are seen. SQLite has no round trips to save, and its ``BEGIN IMMEDIATE`` listener
        would start a write: always the session's. (bench/README.md, "Scale".)"""
        params = {"client_id": client_id}
        bind = session.get_bind()
        if (
            not session.in_transaction()
            and isinstance(bind, Engine)
            and bind.dialect.name != "sqlite"
        ):
            with bind.connect() as conn:  # returned to the pool (isolation reset) however it ends
                conn.execution_options(isolation_level="AUTOCOMMIT")
                return self._snapshot(conn.execute(_LOAD, params).all())
        if session.autoflush and (session.new or session.dirty or session.deleted):
            session.flush()
        return self._snapshot(session.connection().execute(_LOAD, params).all())

    def _snapshot(self, rows: Sequence[Any]) -> ClientInfo | None:
        if not rows:
            return None
        row = rows[0]
        grants = {
            r.grant_audience: tuple(r.grant_scopes) for r in rows if r.grant_audience is not None
        }
        enabled = sorted({(r.connection_position, r.connection_name)
                          for r in rows if r.connection_name is not None})  # fmt: skip
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
            connections=tuple(name for _, name in enabled),  # login-page order
            initiate_login_uri=row.initiate_login_uri,
            subject_type=row.subject_type or "public",
            sector=sector_of(row.redirect_uris, row.sector_identifier_uri),
            jwks=row.jwks,
            jwks_uri=row.jwks_uri,
            token_endpoint_auth_signing_alg=row.token_endpoint_auth_signing_alg,
            secret_encrypted=row.secret_encrypted,
            require_pushed_authorization_requests=row.require_pushed_authorization_requests,
            dpop_bound_access_tokens=row.dpop_bound_access_tokens,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
        )


# ClientDirectory._load's statement, built once: the client's columns, then one row per grant
# and enabled connection (outer joins; None when it has neither).
_LOAD = (
    select(
        *Client.__table__.columns,
        ClientGrant.audience.label("grant_audience"),
        ClientGrant.scopes.label("grant_scopes"),
        Connection.position.label("connection_position"),
        Connection.name.label("connection_name"),
    )
    .select_from(Client)
    .outerjoin(ClientGrant, ClientGrant.client_id == Client.client_id)
    .outerjoin(ConnectionClient, ConnectionClient.client_id == Client.client_id)
    .outerjoin(Connection, Connection.id == ConnectionClient.connection_id)
    .where(Client.client_id == bindparam("client_id"))
)
