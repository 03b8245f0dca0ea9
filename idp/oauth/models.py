"""Clients, APIs, client grants, codes and tokens (RFC 6749, RFC 9068, OIDC Core)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
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
    created_at: Mapped[int] = mapped_column(Integer)


class ResourceServer(Base):
    """An API, identified by its audience URI."""

    __tablename__ = "resource_servers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(512), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
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
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(64))
    include_auth_time: Mapped[bool] = mapped_column(Boolean, default=False)
    action_effects: Mapped[dict[str, object] | None] = mapped_column(JSON)
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
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    family_expires_at: Mapped[int] = mapped_column(Integer)


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
