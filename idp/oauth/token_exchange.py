"""OAuth 2.0 Token Exchange (RFC 8693) at the token endpoint, for confidential clients.

Authlib has no RFC 8693 grant (its ``rfc8693`` package is empty), so this is one on its
``BaseGrant``: Authlib authenticates the client; this module checks the request's parameters
(§2.1), vouches for what it can verify itself (an access token of this issuer, §3), and issues
an RFC 9068 access token (§2.2.1) for the user that the hook named.

Who the subject is, is not decided here: the grant runs ``TOKEN_EXCHANGE_HOOK``, which the
Actions extension registers (``idp.actions.token_exchange``: the ``custom-token-exchange``
trigger), and the grant is answered as unsupported while no hook is registered, so it is off
until an action is bound. No refresh token and no ID token are issued: the exchanged token is
a short-lived delegation (RFC 8693 §2.2.1 makes the refresh token optional), and a client that
wants a session with the user logs them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from sqlalchemy import select

from idp.core.crypto import random_token
from idp.extensions import db, services
from idp.oauth import dpop_http
from idp.oauth.endpoints import access_token_revoked, verify_access_token
from idp.oauth.grants import CONFIDENTIAL_AUTH_METHODS
from idp.oauth.models import AccessTokenRecord, ResourceServer
from idp.oauth.subjects import subject_for
from idp.stores import STORES

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
# RFC 8693 §3: the token type identifiers; idp issues (and itself verifies) access tokens only.
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
TOKEN_EXCHANGE_HOOK = "before_token_exchange"  # noqa: S105 - a hook name
MAX_TOKEN = 8192
MAX_TYPE = 256


class InvalidTargetError(OAuth2Error):
    """RFC 8693 §2.2.2: the server will not issue a token for the audience or resource."""

    error = "invalid_target"


@dataclass
class TokenExchangeContext:
    """What the hook sees. ``subject_claims``/``actor_claims`` are the verified claims of a
    token of this issuer (RFC 9068 §4, not revoked), ``None`` for any other token. The hook
    sets ``user_id`` (the subject) and may add ``claims``; it refuses with an OAuth2Error.
    ``subject_user_id`` is the local user behind an idp subject token (a pairwise client's
    tokens carry a ``sub`` of their own, OIDC Core §8), ``None`` for any other token."""

    client: Any
    subject_token: str
    subject_token_type: str
    actor_token: str | None
    actor_token_type: str | None
    audience: str
    scope: str
    requested_token_type: str | None
    subject_claims: dict[str, Any] | None
    actor_claims: dict[str, Any] | None
    subject_user_id: str | None = None
    user_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    redact: dict[str, str] = field(default_factory=dict)


def _single(form: Any, name: str, limit: int) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise InvalidRequestError(f"Parameter {name!r} is repeated.")
    value = values[0] if values else None
    if value is not None and (not value or len(value) > limit):
        raise InvalidRequestError(f"Parameter {name!r} is empty or too long.")
    return value


def _own_token(token: str) -> dict[str, Any] | None:
    """The claims of an access token this issuer signed and has not revoked, else None."""
    claims = verify_access_token(token)
    if claims is None or access_token_revoked(str(claims["jti"])):
        return None
    return claims


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8693 §2: ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``; with a
    DPoP proof (RFC 9449 §5) the exchanged token is bound to its key, as every grant's is."""

    GRANT_TYPE = GRANT_TYPE
    # Confidential clients only (a secret or RFC 7523 JWTs): the exchanged token speaks for a
    # user, so the client that asks must prove who it is (RFC 8693 §2.1 leaves how to us).
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        if not self._hooks[TOKEN_EXCHANGE_HOOK]:
            # Off until a custom-token-exchange action is bound: as if it did not exist.
            raise UnsupportedGrantTypeError(GRANT_TYPE)
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={GRANT_TYPE}'."
            )
        self.request.client = client
        form = self.request.form
        # §2.1: subject_token and subject_token_type are REQUIRED.
        subject_token = _single(form, "subject_token", MAX_TOKEN)
        subject_type = _single(form, "subject_token_type", MAX_TYPE)
        if not subject_token:
            raise InvalidRequestError("Missing 'subject_token'.")
        if not subject_type:
            raise InvalidRequestError("Missing 'subject_token_type'.")
        # §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT come without it.
        actor_token = _single(form, "actor_token", MAX_TOKEN)
        actor_type = _single(form, "actor_token_type", MAX_TYPE)
        if bool(actor_token) != bool(actor_type):
            raise InvalidRequestError("'actor_token' and 'actor_token_type' go together.")
        requested = _single(form, "requested_token_type", MAX_TYPE)
        if requested is not None and requested != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(
                f"Unsupported 'requested_token_type': only {ACCESS_TOKEN_TYPE} is issued."
            )
        audience = self._audience(client)
        scope = self._scope(client, audience)
        subject_claims = _own_token(subject_token) if subject_type == ACCESS_TOKEN_TYPE else None
        actor_claims = None
        if actor_token:
            actor_claims = _own_token(actor_token) if actor_type == ACCESS_TOKEN_TYPE else None
            if actor_claims is None:
                # §2.2.2: an invalid actor token is invalid_request. idp vouches for an actor
                # itself, so an actor is an access token of this issuer.
                raise InvalidRequestError("The actor_token is not a valid access token of idp.")
        _check_may_act(subject_claims, actor_claims)
        self.request.exchange = TokenExchangeContext(
            client, subject_token, subject_type, actor_token, actor_type, audience, scope,
            requested, subject_claims, actor_claims, _local_user(subject_claims),
            redact={"subject_token": subject_token, **({"actor_token": actor_token}
                                                      if actor_token else {})},
        )  # fmt: skip

    def _audience(self, client: Any) -> str:
        """§2.1: ``audience`` or ``resource`` names the API; idp issues one audience per token."""
        form = self.request.form
        targets = list(dict.fromkeys(form.getlist("audience") + form.getlist("resource")))
        if len(targets) > 1:
            raise InvalidTargetError("One audience (or resource) per token exchange.")
        if not targets and client.app_type == "m2m" and len(client.client_grants) == 1:
            targets = list(client.client_grants)
        if not targets:
            raise InvalidRequestError("Missing 'audience': name the API the token is for.")
        return targets[0]

    def _scope(self, client: Any, audience: str) -> str:
        """The scopes asked for, each defined by the API and, for a machine client, within its
        client grant for that API (what it may have itself, it may have for a user)."""
        defined = db.session.scalar(
            select(ResourceServer.scopes).where(ResourceServer.identifier == audience)
        )
        if defined is None:
            raise InvalidTargetError(f"{audience!r} is not an API of this tenant.")
        allowed = set(defined)
        if client.app_type == "m2m":
            granted = client.client_grants.get(audience)
            if granted is None:
                raise InvalidTargetError(f"The client holds no client grant for {audience!r}.")
            allowed &= set(granted)
        wanted = list(dict.fromkeys((self.request.payload.scope or "").split()))
        if not set(wanted) <= allowed:
            raise InvalidScopeError()
        return " ".join(wanted)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        ctx: TokenExchangeContext = self.request.exchange
        self.execute_hook(TOKEN_EXCHANGE_HOOK, ctx)
        if ctx.user_id is None:
            # the chain neither set a user nor refused: it fails closed, as a failed chain does
            refused = AccessDeniedError("No action identified the subject token's user.")
            refused.status_code = 403
            raise refused
        user = STORES.users.get(db.session, ctx.user_id)
        if user is None:
            raise InvalidRequestError("The subject token's user does not exist.")
        if user.blocked:
            raise InvalidRequestError("user is blocked")
        return 200, self._issue(ctx, user.id), self.TOKEN_RESPONSE_HEADER

    def _issue(self, ctx: TokenExchangeContext, user_id: str) -> dict[str, Any]:
        svc = services()
        client_id = ctx.client.client_id
        jkt = dpop_http.proof_jkt()
        extra = dict(ctx.claims) | dpop_http.bound_claims(jkt)
        if ctx.actor_claims is not None:
            extra["act"] = _act(client_id, ctx.actor_claims, ctx.subject_claims)
        if ctx.subject_claims is not None and isinstance(ctx.subject_claims.get("auth_time"), int):
            extra["auth_time"] = ctx.subject_claims["auth_time"]
        token, jti, exp = svc.issuer.access_token(
            client_id=client_id, sub=subject_for(client_id, user_id),  # a pairwise client's own
            audience=ctx.audience, scope=ctx.scope, extra=extra,
        )  # fmt: skip
        STORES.access_tokens.insert(
            db.session,
            AccessTokenRecord(
                jti=jti,
                grant_id=_parent_grant(ctx.subject_claims) or "tx_" + random_token(12),
                client_id=client_id,
                user_id=user_id,
                expires_at=exp,
                revoked=False,
            ),
        )
        body: dict[str, Any] = {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,  # §2.2.1: REQUIRED
            "token_type": dpop_http.token_type(jkt),
            "expires_in": svc.issuer.access_ttl,
        }
        if ctx.scope:
            body["scope"] = ctx.scope
        return body


def _act(client_id: str, actor: dict[str, Any], subject: dict[str, Any] | None) -> dict[str, Any]:
    """§4.1: ``act`` names the current actor (a user as the client sees users: pairwise for a
    pairwise client; a client by its id); the subject token's own ``act`` (the actors before
    this one) nests inside it, most recent outermost."""
    record = db.session.get(AccessTokenRecord, str(actor["jti"]))
    user = record.user_id if record is not None else None
    act: dict[str, Any] = {"sub": subject_for(client_id, user) if user else actor["sub"]}
    if subject is not None and isinstance(subject.get("act"), dict):
        act["act"] = subject["act"]
    return act


def _check_may_act(subject: dict[str, Any] | None, actor: dict[str, Any] | None) -> None:
    """§4.4: a subject token with ``may_act`` names who may act for its subject; any other
    actor, or none, is refused (§2.2.2: unacceptable by policy is invalid_request). An
    external subject token's ``may_act`` is the action's to read."""
    if subject is None or "may_act" not in subject:
        return
    may_act = subject["may_act"]
    # the actor as its token names it, or the local user behind a pairwise sub
    names = {actor.get("sub"), _local_user(actor)} if actor is not None else set()
    if actor is None or not isinstance(may_act, dict) or may_act.get("sub") not in names:
        raise InvalidRequestError("The actor may not act for the subject (may_act).")
    if "iss" in may_act and may_act["iss"] != actor.get("iss"):
        raise InvalidRequestError("The actor may not act for the subject (may_act).")


def _local_user(claims: dict[str, Any] | None) -> str | None:
    """The local user behind an idp token: its record's (a pairwise ``sub`` cannot be
    reversed), else its ``sub`` (a client-credentials token's is the client's id)."""
    if claims is None:
        return None
    record = db.session.get(AccessTokenRecord, str(claims["jti"]))
    return record.user_id if record is not None and record.user_id else str(claims["sub"])


def _parent_grant(subject: dict[str, Any] | None) -> str | None:
    """An exchanged token joins the grant of the idp token it came from, so that revoking
    that grant (logout, refresh-token reuse, revocation) switches the exchanged token off too."""
    if subject is None:
        return None
    record = db.session.get(AccessTokenRecord, str(subject["jti"]))
    return record.grant_id if record is not None else None
