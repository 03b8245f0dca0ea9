"""Token minting: RFC 9068 JWT access tokens, OIDC Core §2 ID tokens, opaque refresh tokens.

Everything here adds rows to the caller's session and never commits: the token endpoint
commits once, after the code or refresh token has been claimed (ARCHITECTURE.md §10).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.identity import profile
from idp.identity.models import User
from idp.keys.service import KeyRing
from idp.oauth.models import AccessTokenRecord, RefreshToken
from idp.oauth.subjects import subject_for
from idp.stores import STORES

OIDC_SCOPES = ("openid", "profile", "email", "phone", "address", "offline_access")


@dataclass(frozen=True)
class GrantContext:
    """What a user grant carries from the code to every refresh (OIDC Core §12.2)."""

    grant_id: str
    client_id: str
    user_id: str
    scope: str
    audience: str | None
    auth_time: int
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    sid: str | None = None
    family_expires_at: int | None = None
    # What the post-login chain decided (idp.actions): {"id": claims, "at": claims,
    # "add": scopes, "remove": scopes}. Reserved claims never get here (commands.py).
    action_effects: dict[str, Any] | None = None
    # RFC 9449 §5: the DPoP key (JWK thumbprint) a public client's refresh tokens are bound to
    dpop_jkt: str | None = None
    # The claims requested by name (OIDC Core §5.5, idp.oauth.claims_request), per member.
    claims: dict[str, list[str]] | None = None


def adjust_scope(scope: str, effects: dict[str, Any] | None) -> str:
    """``api.access_token.add_scope/remove_scope``: the access token's scope only."""
    if not effects:
        return scope
    scopes = [s for s in scope.split() if s not in set(effects.get("remove", []))]
    scopes += [s for s in effects.get("add", []) if s not in scopes]
    return " ".join(scopes)


def half_hash(value: str) -> str:
    """``at_hash`` for SHA-256 based algorithms (OIDC Core §3.1.3.6)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def user_claims(user: User, scope: str, requested: list[str] | None = None) -> dict[str, Any]:
    """Claims released for ``scope`` (OIDC Core §5.4) and, in addition, those requested for
    userinfo by name (§5.5); ``sub`` always, absent claims never (not as ``null``). idp always
    issues an access token for the userinfo endpoint with an ID token, so scope claims are
    served at ``/userinfo`` only; the ID token has those the ``claims`` parameter asks for."""
    return {"sub": user.id} | profile.released(user, set(scope.split())) | released(user, requested)


def released(user: User, names: list[str] | None) -> dict[str, Any]:
    """The standard claims named in ``names`` that ``user`` has (absent ones left out)."""
    if not names:
        return {}
    have = profile.standard_claims(user)
    return {name: have[name] for name in names if name in have}


class TokenIssuer:
    def __init__(self, keys: KeyRing, config: dict[str, Any]) -> None:
        self.keys = keys
        self.issuer: str = config["ISSUER"]
        self.access_ttl: int = config["ACCESS_TOKEN_TTL"]
        self.id_ttl: int = config["ID_TOKEN_TTL"]
        self.refresh_idle_ttl: int = config["REFRESH_TOKEN_IDLE_TTL"]
        self.refresh_absolute_ttl: int = config["REFRESH_TOKEN_ABSOLUTE_TTL"]
        self.userinfo_audience = f"{self.issuer}/userinfo"

    def access_token(
        self,
        *,
        client_id: str,
        sub: str,
        audience: str | list[str],
        scope: str,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, str, int]:
        """RFC 9068 §2.2 claims, signed with ``typ: at+jwt`` (§2.1). Returns (jwt, jti, exp)."""
        now = clock.now()
        jti = random_token(18)
        exp = now + self.access_ttl
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "exp": exp,
            "iat": now,
            "jti": jti,
            "client_id": client_id,
        }
        if scope:
            claims["scope"] = scope
        if extra:
            claims.update(extra)
        return self.keys.sign(claims, typ="at+jwt"), jti, exp

    def user_access_token(
        self, session: Session, ctx: GrantContext, scope: str, jkt: str | None = None
    ) -> dict[str, Any]:
        """Access token for a user grant; its ``jti`` is recorded under the grant id so that
        code replay, refresh reuse and revocation can switch the whole grant off. With ``jkt``
        it is DPoP-bound: ``cnf.jkt`` and ``token_type`` DPoP (RFC 9449 §5, §6.1)."""
        aud: str | list[str]
        if ctx.audience and "openid" in scope.split():
            aud = [ctx.audience, self.userinfo_audience]
        elif ctx.audience:
            aud = ctx.audience
        else:
            aud = self.userinfo_audience
            scope = " ".join(s for s in scope.split() if s in OIDC_SCOPES)
        scope = adjust_scope(scope, ctx.action_effects)
        extra: dict[str, Any] = dict((ctx.action_effects or {}).get("at", {}))
        extra["auth_time"] = ctx.auth_time
        if ctx.acr:
            extra["acr"] = ctx.acr
        if jkt:
            extra["cnf"] = {"jkt": jkt}
        token, jti, exp = self.access_token(
            client_id=ctx.client_id,
            sub=subject_for(ctx.client_id, ctx.user_id),
            audience=aud,
            scope=scope,
            extra=extra,
        )
        STORES.access_tokens.insert(
            session,
            AccessTokenRecord(
                jti=jti,
                grant_id=ctx.grant_id,
                client_id=ctx.client_id,
                user_id=ctx.user_id,
                expires_at=exp,
                revoked=False,
                claims=(ctx.claims or {}).get("userinfo") or None,  # what userinfo adds
            ),
        )
        return {
            "access_token": token,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": self.access_ttl,
            "scope": scope,
        }

    def id_token(
        self, ctx: GrantContext, user: User, access_token: str, nonce: str | None,
        registered_alg: str | None = None,
    ) -> str:  # fmt: skip
        """OIDC Core §2 / §3.1.3.6. ``auth_time`` is the real authentication time (never
        issuance time) and is always present; profile claims go to userinfo (§5.4). Signed
        with the client's ``id_token_signed_response_alg`` (``registered_alg``), else RS256
        (OIDC Registration §2), whatever the tenant's access tokens use."""
        now = clock.now()
        claims: dict[str, Any] = dict((ctx.action_effects or {}).get("id", {}))
        claims |= {
            "iss": self.issuer,
            "sub": subject_for(ctx.client_id, user.id),  # pairwise clients' own (§8)
            "aud": ctx.client_id,
            "exp": now + self.id_ttl,
            "iat": now,
            "auth_time": ctx.auth_time,
            # RS256 and ES256 both hash with SHA-256, so one half-hash serves both.
            "at_hash": half_hash(access_token),
        }
        # claims requested for the ID token by name (§5.5), that the user has
        claims = released(user, (ctx.claims or {}).get("id_token")) | claims
        if nonce:
            claims["nonce"] = nonce
        if ctx.sid:
            claims["sid"] = ctx.sid
        if ctx.acr:
            claims["acr"] = ctx.acr
        if ctx.amr:
            claims["amr"] = list(ctx.amr)
        return self.keys.sign(claims, alg=self.keys.id_token_alg(registered_alg))

    def refresh_token(
        self, session: Session, ctx: GrantContext, parent_id: str | None = None
    ) -> str:
        """A new link in the rotation family; only the SHA-256 of the value is stored."""
        now = clock.now()
        value = random_token(32)
        family_expires = ctx.family_expires_at or now + self.refresh_absolute_ttl
        session.add(
            RefreshToken(
                id="rt_" + random_token(12),
                token_hash=sha256_hex(value),
                family_id=ctx.grant_id,
                parent_id=parent_id,
                client_id=ctx.client_id,
                user_id=ctx.user_id,
                scope=ctx.scope,
                audience=ctx.audience,
                auth_time=ctx.auth_time,
                amr=list(ctx.amr),
                acr=ctx.acr,
                sid=ctx.sid,
                claims=ctx.claims,
                dpop_jkt=ctx.dpop_jkt,
                status="active",
                created_at=now,
                expires_at=min(now + self.refresh_idle_ttl, family_expires),
                family_expires_at=family_expires,
            )
        )
        return value


def lock_family(session: Session, grant_id: str) -> None:
    """Serialise work on one refresh family (PostgreSQL row locks, in id order so that two
    lockers never deadlock; SQLite's BEGIN IMMEDIATE already serialises). A statement run after
    the lock sees rows committed meanwhile, so a revocation cannot miss a child that a
    concurrent rotation was inserting (READ COMMITTED takes a new snapshot per statement)."""
    session.execute(
        select(RefreshToken.id)
        .where(RefreshToken.family_id == grant_id)
        .order_by(RefreshToken.id)
        .with_for_update()
    ).all()


def revoke_grant(session: Session, grant_id: str) -> None:
    """Switch off every refresh and access token of a grant (RFC 9700 §4.14.2, RFC 6749 §4.1.2)."""
    lock_family(session, grant_id)
    session.execute(
        update(RefreshToken).where(RefreshToken.family_id == grant_id).values(status="revoked")
    )
    session.execute(
        update(AccessTokenRecord).where(AccessTokenRecord.grant_id == grant_id).values(revoked=True)
    )
