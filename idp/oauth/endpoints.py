"""Revocation (RFC 7009) and introspection (RFC 7662) over idp's token storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select

from idp.core import clock
from idp.core.crypto import sha256_hex
from idp.extensions import db, services
from idp.oauth.grants import CONFIDENTIAL_AUTH_METHODS, USER_GRANT_AUTH_METHODS
from idp.oauth.models import AccessTokenRecord, RefreshToken
from idp.oauth.subjects import subject_for
from idp.oauth.tokens import revoke_grant


@dataclass
class TokenRef:
    """A presented token, resolved: a refresh-token row or verified access-token claims."""

    kind: str
    client_id: str
    refresh: RefreshToken | None = None
    claims: dict[str, Any] | None = None

    def check_client(self, client: Any) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        now = clock.now()
        if self.refresh is not None:
            return now >= min(self.refresh.expires_at, self.refresh.family_expires_at)
        assert self.claims is not None
        return now >= int(self.claims.get("exp", 0))

    def is_revoked(self) -> bool:
        if self.refresh is not None:
            return self.refresh.status != "active"
        assert self.claims is not None
        return access_token_revoked(str(self.claims.get("jti", "")))


def access_token_revoked(jti: str) -> bool:
    record = db.session.get(AccessTokenRecord, jti)
    return record is not None and record.revoked


def verify_access_token(token: str) -> dict[str, Any] | None:
    """Claims of an access token we issued (RFC 9068 §4): signature by our key, ``typ`` at+jwt
    (so an ID token is never accepted as an access token), our issuer, not expired."""
    if not token or len(token) > 8192 or token.count(".") != 2:
        return None
    svc = services()
    svc.keys.refresh()
    try:
        header, claims = svc.keys.verify(token)
    except ValueError:
        return None
    if str(header.get("typ", "")).lower() not in {"at+jwt", "application/at+jwt"}:
        return None
    if claims.get("iss") != svc.issuer.issuer or not isinstance(claims.get("exp"), int):
        return None
    if clock.now() >= claims["exp"] or not claims.get("jti") or not claims.get("client_id"):
        return None
    return claims


def resolve_token(value: str, hint: str | None) -> TokenRef | None:
    """Find a token whatever the hint says (RFC 7009 §2.1: a wrong hint must not matter)."""
    if not value or len(value) > 8192:
        return None
    lookups = [_as_refresh, _as_access]
    if hint == "access_token":
        lookups.reverse()
    for lookup in lookups:
        found = lookup(value)
        if found is not None:
            return found
    return None


def _as_refresh(value: str) -> TokenRef | None:
    row = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(value))
    )
    return TokenRef("refresh_token", row.client_id, refresh=row) if row else None


def _as_access(value: str) -> TokenRef | None:
    claims = verify_access_token(value)
    return TokenRef("access_token", str(claims["client_id"]), claims=claims) if claims else None


def _check_params(request: Any, client: Any) -> None:
    """``token`` is required; an unknown ``token_type_hint`` is ignored, because the server
    searches every token type anyway (RFC 7009 §2.1, RFC 7662 §2.1)."""
    if not request.form.get("token"):
        raise InvalidRequestError("Missing 'token'.")


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        _check_params(request, client)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRef | None:
        return resolve_token(token_string, token_type_hint)

    def revoke_token(self, token: TokenRef, request: Any) -> None:
        if token.refresh is not None:
            # RFC 7009 §2.1: revoking a refresh token also invalidates the grant's access tokens.
            revoke_grant(db.session, token.refresh.family_id)
            return
        assert token.claims is not None
        services().token_reuse.revoked()
        jti = str(token.claims["jti"])
        record = db.session.get(AccessTokenRecord, jti)
        if record is None:
            db.session.add(
                AccessTokenRecord(
                    jti=jti,
                    grant_id=None,
                    client_id=token.client_id,
                    user_id=None,
                    expires_at=int(token.claims["exp"]),
                    revoked=True,
                )
            )
        else:
            record.revoked = True


class Introspection(IntrospectionEndpoint):
    """Policy (RFC 7662 §4): confidential clients only; a client may introspect its own tokens
    and tokens whose audience is an API it holds a client grant for."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        _check_params(request, client)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRef | None:
        return resolve_token(token_string, token_type_hint)

    def check_permission(self, token: TokenRef, client: Any, request: Any) -> bool:
        if token.client_id == client.client_id:
            return True
        if token.claims is None:
            return False
        aud = token.claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        return any(a in client.client_grants for a in audiences)

    def introspect_token(self, token: TokenRef) -> dict[str, Any]:
        issuer = services().issuer.issuer
        if token.refresh is not None:
            row = token.refresh
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": row.client_id,
                "sub": subject_for(row.client_id, row.user_id),
                "scope": row.scope,
                "exp": min(row.expires_at, row.family_expires_at),
                "iat": row.created_at,
                "iss": issuer,
            }
        assert token.claims is not None
        claims = token.claims
        # RFC 9449 §6.2: a DPoP-bound token answers with its cnf and token_type DPoP
        body = {"active": True, "token_type": "DPoP" if "cnf" in claims else "Bearer"}
        for key in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "cnf"):
            if key in claims:
                body[key] = claims[key]
        return body
