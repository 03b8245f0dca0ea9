"""Authlib grants with idp's storage: atomic code redemption, rotating refresh tokens with
reuse detection, and audience-scoped client credentials (ARCHITECTURE.md §9-§10).

Authlib performs the RFC checks (client authentication, redirect URI, PKCE, scope subset);
these subclasses supply storage and identity only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from sqlalchemy import select, update

from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.extensions import db, services
from idp.identity.models import User
from idp.oauth import dpop_http
from idp.oauth.models import AuthorizationCode, RefreshToken
from idp.oauth.token_reuse import ReusableToken
from idp.oauth.tokens import GrantContext, lock_family, revoke_grant
from idp.stores import STORES

# Each client authenticates with its registered method (ClientInfo.check_endpoint_auth_method);
# the JWT methods are RFC 7523's (idp.oauth.client_jwt).
CONFIDENTIAL_AUTH_METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
]
USER_GRANT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
# Hooks that extensions registered at init_app (idp.actions.grants) run on; the grants stay
# free of what runs there, as Authlib's own extensions keep PKCE out of the code grant.
REFRESH_HOOK = "before_refresh_token_rotation"
CLIENT_CREDENTIALS_HOOK = "before_client_credentials_token"


@dataclass
class RefreshContext:
    """What a refresh hook sees; it may set ``action_effects`` or raise an OAuth2Error."""

    user: User
    client: Any
    row: RefreshToken
    scope: str
    action_effects: dict[str, Any] | None = None


@dataclass
class ExchangeContext:
    """What a client-credentials hook sees; it may add claims (then the token is not reused
    for another request) or raise an OAuth2Error."""

    client: Any
    audience: str
    scope: str
    claims: dict[str, Any] = field(default_factory=dict)
    reusable: bool = True


@dataclass(frozen=True)
class AuthenticatedUser:
    """What the login step hands to code issuance."""

    user: User
    auth_time: int
    sid: str | None
    amr: list[str]
    scope: str
    audience: str | None
    acr: str | None = None
    action_effects: dict[str, Any] | None = None
    # the claims requested by name (OIDC Core §5.5): {"id_token": [...], "userinfo": [...]}
    claims: dict[str, list[str]] | None = None


class S256CodeChallenge(CodeChallenge):
    """PKCE, S256 only (OAuth 2.1 §4.1.1). A challenge without a method means ``plain``
    (RFC 7636 §4.3), which we refuse; verifier failures are ``invalid_grant`` (FAPI2)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        if not grant.request.payload.data.get("code_challenge_method"):
            raise InvalidRequestError("Missing 'code_challenge_method'; only S256 is supported")

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except InvalidRequestError as exc:
            raise InvalidGrantError(exc.description) from exc

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> Any:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCode) -> Any:
        return authorization_code.code_challenge_method


def _grant_context(row: AuthorizationCode | RefreshToken, grant_id: str) -> GrantContext:
    return GrantContext(
        grant_id=grant_id,
        client_id=row.client_id,
        user_id=row.user_id,
        scope=row.scope,
        audience=row.audience,
        auth_time=row.auth_time,
        amr=list(row.amr or []),
        acr=row.acr,
        sid=row.sid,
        family_expires_at=getattr(row, "family_expires_at", None),
        action_effects=getattr(row, "action_effects", None),
        dpop_jkt=getattr(row, "dpop_jkt", None),  # RFC 9449 §5: the refresh token's binding
        claims=row.claims,
    )


def _issue(
    ctx: GrantContext,
    user: User,
    scope: str,
    nonce: str | None,
    refresh: bool,
    parent_id: str | None,
    client: Any,
) -> dict[str, Any]:
    """A user grant's tokens (code, refresh, device): a DPoP proof binds the access token (RFC
    9449 §6.1) and a public client's new refresh family (§5); a rotation keeps its binding."""
    svc = services()
    session = db.session
    if parent_id is None:
        ctx = replace(ctx, dpop_jkt=dpop_http.refresh_binding(client))
    token = svc.issuer.user_access_token(session, ctx, scope, jkt=dpop_http.proof_jkt())
    if "openid" in scope.split():
        alg = getattr(client, "id_token_signed_response_alg", None)  # OIDC Registration §2
        token["id_token"] = svc.issuer.id_token(ctx, user, token["access_token"], nonce, alg)
    if refresh:
        token["refresh_token"] = svc.issuer.refresh_token(session, ctx, parent_id)
    return token


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        who: AuthenticatedUser = request.user
        data = request.payload.data
        now = clock.now()
        STORES.codes.insert(
            db.session,
            AuthorizationCode(
                code_hash=sha256_hex(code),
                grant_id="grt_" + random_token(12),
                client_id=request.client.client_id,
                user_id=who.user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=who.scope,
                audience=who.audience,
                nonce=data.get("nonce") or None,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                dpop_jkt=dpop_http.code_binding(data.get("dpop_jkt")),  # RFC 9449 §10
                auth_time=who.auth_time,
                amr=who.amr,
                acr=who.acr,
                sid=who.sid,
                include_auth_time=True,
                action_effects=who.action_effects,
                claims=who.claims,
                created_at=now,
                expires_at=now + services().config["AUTH_CODE_TTL"],
            ),
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        """Claim the code with one conditional update (SECURITY.md §3.1): of any number of
        concurrent redemptions exactly one gets the row back."""
        now = clock.now()
        code_hash = sha256_hex(code)
        claimed = STORES.codes.claim(db.session, code_hash, client.client_id, now)
        if claimed is None:
            self._on_replay(code_hash, client.client_id)
            return None
        if not claimed.code_challenge:
            # Every code we issue carries a PKCE challenge (OAuth 2.1 §4.1.1); one without is
            # not ours to honour, whatever the client type (TK-15).
            return None
        # OAuth 2.1 §4.1.3: redirect_uri at the token endpoint is optional (PKCE binds the
        # code), but when sent it must match; Authlib compares only what get_redirect_uri gives.
        claimed.check_redirect_uri = bool(self.request.payload.redirect_uri)
        return claimed

    def _on_replay(self, code_hash: str, client_id: str) -> None:
        """RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it, but only when
        the replay proves possession (right client and verifier), so that a junk request cannot
        switch off a legitimate grant (OAuth 2.1 §7.5.2)."""
        row = db.session.get(AuthorizationCode, code_hash)
        if row is None or row.used_at is None or row.client_id != client_id:
            return
        verifier = self.request.form.get("code_verifier") or ""
        if row.code_challenge and create_s256_code_challenge(verifier) == row.code_challenge:
            revoke_grant(db.session, row.grant_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: the code was marked used when it was claimed."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return STORES.users.get(db.session, authorization_code.user_id)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        code: AuthorizationCode = self.request.authorization_code
        user = self.authenticate_user(code)
        if user is None:
            raise InvalidGrantError("The user of this code no longer exists.")
        if user.blocked:  # blocked between the login and the code's redemption
            raise InvalidGrantError("user is blocked")
        dpop_http.check_code_binding(code.dpop_jkt)
        ctx = _grant_context(code, code.grant_id)
        client = self.request.client
        refresh = client.check_grant_type("refresh_token") and (
            "offline_access" in code.scope.split()
        )
        token = _issue(ctx, user, code.scope, code.nonce, refresh, None, client)
        return 200, token, self.TOKEN_RESPONSE_HEADER


@dataclass
class RefreshRef:
    row: RefreshToken

    def check_client(self, client: Any) -> bool:
        return bool(self.row.client_id == client.client_id)

    def get_scope(self) -> str:
        return self.row.scope


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRef | None:
        row = db.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token))
        )
        return RefreshRef(row) if row is not None else None

    def authenticate_user(self, refresh_token: RefreshRef) -> User | None:
        return db.session.get(User, refresh_token.row.user_id)

    def _rotate(self, row: RefreshToken) -> None:
        """Claim ``row`` with a conditional update. A loser of a benign race (or a client whose
        response was lost) presenting the immediately previous token within the grace window is
        served in the same family; anything else is reuse and revokes the family."""
        now = clock.now()
        lock_family(db.session, row.family_id)
        db.session.refresh(row)  # what a concurrent rotation or revocation committed meanwhile
        if row.status == "revoked" or now >= row.expires_at or now >= row.family_expires_at:
            raise InvalidGrantError("The refresh token is expired or revoked.")
        result: Any = db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.status == "active")
            .values(status="rotated", rotated_at=now),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount == 1:
            return
        db.session.refresh(row)
        grace = services().config["REFRESH_GRACE_SECONDS"]
        descendants_moved_on = db.session.scalar(
            select(RefreshToken.id).where(
                RefreshToken.parent_id == row.id, RefreshToken.status != "active"
            )
        )
        in_grace = (
            row.status == "rotated"
            and row.rotated_at is not None
            and now - row.rotated_at <= grace
            and descendants_moved_on is None
        )
        if not in_grace:
            revoke_grant(db.session, row.family_id)
            raise InvalidGrantError("The refresh token was already used.")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        ref: RefreshRef = self.request.refresh_token
        row = ref.row
        user = self.authenticate_user(ref)
        if user is None:
            raise InvalidGrantError("The user of this token no longer exists.")
        if user.blocked:  # Auth0: refused while blocked, the token kept for after the block
            raise InvalidGrantError("user is blocked")
        scope = self.request.payload.scope or row.scope
        dpop_http.check_refresh_binding(row.dpop_jkt)
        # The hooks (the post-login chain) run before the rotation's transaction opens (no
        # write lock is held while actions run); a refusal leaves the refresh token as it was.
        hooked = RefreshContext(user, self.request.client, row, scope)
        self.execute_hook(REFRESH_HOOK, hooked)
        self._rotate(row)
        ctx = replace(_grant_context(row, row.family_id), action_effects=hooked.action_effects)
        token = _issue(ctx, user, scope, None, True, row.id, self.request.client)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for m2m applications, audience-scoped by client grants (Auth0 model).

    The hot path reads only cached data and writes nothing: the token is a signed JWT whose
    ``jti`` is recorded only if it is ever revoked.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client = self.request.client
        form = self.request.form
        audience = form.get("audience") or form.get("resource")
        if not audience and len(client.client_grants) == 1:
            audience = next(iter(client.client_grants))
        if not audience:
            raise InvalidRequestError("Missing 'audience': name the API the token is for.")
        granted = client.client_grants.get(audience)
        if granted is None:
            err = AccessDeniedError(f"The client is not authorized to access {audience!r}.")
            err.status_code = 403
            raise err
        requested = self.request.payload.scope
        if requested:
            wanted = requested.split()
            if not set(wanted) <= set(granted):
                raise InvalidScopeError()
            scope = " ".join(dict.fromkeys(wanted))
        else:
            scope = " ".join(granted)
        self.request.audience = audience
        self.request.granted_scope = scope

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        svc = services()
        client = self.request.client
        hooked = ExchangeContext(client, self.request.audience, self.request.granted_scope)
        self.execute_hook(CLIENT_CREDENTIALS_HOOK, hooked)
        if not hooked.reusable or dpop_http.proof_jkt():  # a bound token is this key's only
            return self._token(svc, client, hooked.claims)
        key = (client.client_id, self.request.audience, self.request.granted_scope)
        reused = svc.token_reuse.get(key)
        if reused is None:
            access_token, _jti, exp = svc.issuer.access_token(
                client_id=client.client_id,
                sub=client.client_id,
                audience=self.request.audience,
                scope=self.request.granted_scope,
            )
            reused = ReusableToken(access_token, clock.now(), exp)
            svc.token_reuse.put(key, reused)
        body: dict[str, Any] = {
            "access_token": reused.access_token,
            "token_type": "Bearer",
            "expires_in": max(reused.expires_at - clock.now(), 1),
        }
        if self.request.granted_scope:
            body["scope"] = self.request.granted_scope
        return 200, body, self.TOKEN_RESPONSE_HEADER

    def _token(
        self, svc: Any, client: Any, claims: dict[str, Any]
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """A token signed for this request only, with the hooks' claims (and RFC 9449 §6.1's
        ``cnf`` when the request carried a DPoP proof)."""
        jkt = dpop_http.proof_jkt()
        access_token, _jti, _exp = svc.issuer.access_token(
            client_id=client.client_id,
            sub=client.client_id,
            audience=self.request.audience,
            scope=self.request.granted_scope,
            extra=claims | dpop_http.bound_claims(jkt),
        )
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": dpop_http.token_type(jkt),
            "expires_in": svc.issuer.access_ttl,
        }
        if self.request.granted_scope:
            body["scope"] = self.request.granted_scope
        return 200, body, self.TOKEN_RESPONSE_HEADER
