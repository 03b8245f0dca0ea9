"""Clients, APIs, client grants, codes and tokens (RFC 6749, RFC 9068, OIDC Core)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class Client(Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    app_type: Mapped[str] = mapped_column(String(16))
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_party: Mapped[bool] = mapped_column(Boolean, default=True)
    # never | always | adaptive; None follows the tenant's MFA_POLICY
    mfa_policy: Mapped[str | None] = mapped_column(String(16))
    # RFC 9449 §5.2: every token request of this client must carry a DPoP proof
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # OIDC Core §4 / Registration §2: where idp sends a browser to have the app start a
    # login itself (IdP-initiated SAML SSO lands here, never with a code)
    initiate_login_uri: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[int] = mapped_column(Integer)
    # OIDC Core §8: the sub this client sees, public (the user id) or pairwise (per sector,
    # the host of sector_identifier_uri or of the redirect URIs; idp.oauth.subjects)
    subject_type: Mapped[str] = mapped_column(String(16), default="public",
                                              server_default="public")  # fmt: skip
    sector_identifier_uri: Mapped[str | None] = mapped_column(String(2048))
    # OIDC Back-Channel Logout §2.2: where idp POSTs a Logout Token when a session of the
    # user's with this client ends (idp.backchannel); sid is always in it, required or not
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2048))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # RFC 7523 / OIDC Core §9 and RFC 9101: the client's public keys, by value or by reference
    jwks: Mapped[dict[str, object] | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    token_endpoint_auth_signing_alg: Mapped[str | None] = mapped_column(String(16))
    # client_secret_jwt only: the HMAC key must be the secret itself, so that method's clients
    # (and only theirs) keep it encrypted with SecretBox beside the digest
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # RFC 9126 §6: this client's authorization requests come through /oauth/par only
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # OIDC Registration §2: the algorithm of this client's ID tokens (one the tenant signs
    # with, idp.keys.service.KeyRing.algorithms); None: RS256, the default
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))


class ResourceServer(Base):
    """An API, identified by its audience URI."""

    __tablename__ = "resource_servers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(512), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Auth0's scopes[].description, by scope value (a scope without one is absent): kept
    # beside ``scopes`` so that every reader of the plain list stays as it is
    scope_descriptions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)


class ClientGrant(Base):
    """Which machine-to-machine client may get which scopes of which API."""

    __tablename__ = "client_grants"
    __table_args__ = (UniqueConstraint("client_id", "audience"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(
        ForeignKey("resource_servers.identifier", ondelete="CASCADE")
    )
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(Integer)


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(40), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(40))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(String(2048))
    audience: Mapped[str | None] = mapped_column(String(512))
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    # RFC 9449 §10: the DPoP key (JWK thumbprint) the code must be redeemed with
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(64))
    include_auth_time: Mapped[bool] = mapped_column(Boolean, default=False)
    action_effects: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # OIDC Core §5.5: claims requested by name, {"id_token": [...], "userinfo": [...]}
    claims: Mapped[dict[str, list[str]] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[int | None] = mapped_column(Integer)

    # Not a column: whether the token request sent redirect_uri (see grants.py).
    check_redirect_uri = True

    # Authlib's AuthorizationCodeMixin interface
    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri if self.check_redirect_uri else None

    def get_scope(self) -> str:
        return self.scope


class RefreshToken(Base):
    """One link of a rotation family (``family_id`` is the grant id)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    scope: Mapped[str] = mapped_column(String(2048))
    audience: Mapped[str | None] = mapped_column(String(512))
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    # OIDC Core §5.5: the grant's claims requested by name (as on its code)
    claims: Mapped[dict[str, list[str]] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    family_expires_at: Mapped[int] = mapped_column(Integer)
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key (JWK thumbprint)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class AccessTokenRecord(Base):
    """``jti`` of user-bound access tokens (so a grant's tokens can be revoked together) and of
    any revoked access token. Client-credentials tokens get a row only when revoked: the hot
    path of machine-to-machine issuance writes nothing."""

    __tablename__ = "access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str | None] = mapped_column(String(40), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[int] = mapped_column(Integer)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # OIDC Core §5.5: the claims userinfo releases by name for this token, beyond its scope
    claims: Mapped[list[str] | None] = mapped_column(JSON)


class UsedJti(Base):
    """A JWT ID already accepted (a client assertion, RFC 7523 §3 item 7; a request object,
    RFC 9101 §10.8), kept until the JWT expires: the primary key makes a second use lose, on
    every worker and instance, even when both arrive at once."""

    __tablename__ = "used_jtis"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)


class PushedRequest(Base):
    """A pushed authorization request (RFC 9126 §2.2): its validated parameters, referenced
    once by its ``request_uri`` (stored as a digest, like a code) until it expires."""

    __tablename__ = "pushed_authorization_requests"

    uri_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, str]] = mapped_column(JSON)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
