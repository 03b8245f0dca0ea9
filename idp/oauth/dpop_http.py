"""DPoP (RFC 9449) at idp's endpoints: proofs at the token endpoint (§5), DPoP-bound access
tokens at userinfo (§7), server nonces (§8, §9), the per-client requirement (§5.2) and the
binding of public clients' refresh tokens (§5). ``idp.oauth.dpop`` checks the proofs.

The replay cache of proof ``jti`` values is the ``used_jtis`` table (a unique key and an
expiry, shared with client assertions and request objects), or Redis when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
)
from flask import Flask, current_app, g, jsonify, request
from werkzeug.wrappers import Response

from idp.core import clock
from idp.extensions import Services, db, services
from idp.oauth.client_features import DPOP_OFF
from idp.oauth.discovery import contributes
from idp.oauth.dpop import (
    SIGNING_ALGS,
    Nonces,
    Proof,
    ProofError,
    RedisReplayCache,
    ReplayCache,
    SqlReplayCache,
    invalid,
    replay_key,
    verify_proof,
)
from idp.oauth.models import UsedJti

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class DPoPService:
    enabled: bool
    nonce_required: bool
    iat_window: int
    nonces: Nonces
    replay: ReplayCache
    sql_replay: bool


def init_app(app: Flask) -> None:
    cfg = app.config
    redis_url = cfg.get("REDIS_URL") or ""
    replay: ReplayCache = (
        RedisReplayCache(redis_url)
        if redis_url
        else SqlReplayCache(UsedJti.__table__, lambda: db.session)  # type: ignore[arg-type]
    )
    app.extensions["idp.dpop"] = DPoPService(
        enabled=bool(cfg["DPOP_ENABLED"]),
        nonce_required=bool(cfg["DPOP_NONCE_REQUIRED"]),
        iat_window=int(cfg["DPOP_IAT_WINDOW"]),
        nonces=Nonces(cfg["SECRET_KEY"], int(cfg["DPOP_NONCE_SECONDS"])),
        replay=replay,
        sql_replay=not redis_url,
    )


def _svc() -> DPoPService:
    svc: DPoPService = current_app.extensions["idp.dpop"]
    return svc


@contributes
def _metadata(document: dict[str, Any], svc: Services) -> None:
    """RFC 9449 §5.1: advertised exactly when proofs are accepted."""
    if svc.config["DPOP_ENABLED"]:
        document["dpop_signing_alg_values_supported"] = list(SIGNING_ALGS)


class InvalidDPoPProofError(OAuth2Error):
    """§5 / §12.2: ``invalid_dpop_proof`` at the token endpoint."""

    error = "invalid_dpop_proof"
    status_code = 400


def _check(url_path: str, access_token: str | None = None) -> Proof:
    """The whole §4.3 check of this request's proof: the proof itself, the nonce when nonces
    are required, then its single use. The jti is committed at once (SQL), so a second use is
    refused whatever the rest of the request does."""
    svc = _svc()
    now = clock.now()
    proof = verify_proof(
        request.headers.getlist("DPoP"),
        method=request.method,
        url=services().issuer.issuer + url_path,
        now=now,
        iat_window=svc.iat_window,
        access_token=access_token,
    )
    if svc.nonce_required:
        if not proof.nonce:
            raise ProofError("use_dpop_nonce", "Use the DPoP-Nonce header's nonce in the proof.")
        if not svc.nonces.accepts(proof.nonce, now):
            raise ProofError("use_dpop_nonce", "The DPoP nonce is stale; use the new one.")
    if not svc.replay.first_use(replay_key(proof), proof.iat + svc.iat_window + 1, now):
        raise invalid("The DPoP proof was used already.")
    if svc.sql_replay:
        db.session.commit()
    return proof


def add_nonce(resp: Response) -> Response:
    """§8.2: with nonces required, every answer carries the current one, so a client always
    holds a fresh nonce before the old one stops being accepted."""
    svc = _svc()
    if svc.enabled and svc.nonce_required:
        resp.headers["DPoP-Nonce"] = svc.nonces.current(clock.now())
    return resp


def _refusal(exc: ProofError) -> Response:
    """§5, §8: ``400`` with ``invalid_dpop_proof`` or ``use_dpop_nonce`` (and the nonce)."""
    resp = jsonify({"error": exc.error, "error_description": exc.description})
    resp.status_code = 400
    resp.headers.update(NO_STORE)
    return add_nonce(resp)


# -------------------------------------------------------------------------- token endpoint
def token_request_problem() -> Response | None:
    """§5: verify the token request's proof, if any, before any grant runs (so a refused proof,
    a nonce round trip included, never costs the client its code). The proof is kept in ``g``
    for the grants: :func:`proof_jkt`."""
    g.dpop_proof = None
    if not _svc().enabled or "DPoP" not in request.headers:
        return None
    try:
        g.dpop_proof = _check("/oauth/token")
    except ProofError as exc:
        return _refusal(exc)
    return None


def pushed_request_proof() -> tuple[str | None, Response | None]:
    """§10.1: a ``DPoP`` header at the PAR endpoint is checked as at the token endpoint (§4.3,
    ``htu`` the PAR endpoint, the nonce when required, single use), and its key's thumbprint
    binds the code as ``dpop_jkt`` would. ``(jkt, None)``, ``(None, None)`` without a header
    (or with DPoP off), or ``(None, refusal)``."""
    if not _svc().enabled or "DPoP" not in request.headers:
        return None, None
    try:
        return _check("/oauth/par").jkt, None
    except ProofError as exc:
        return None, _refusal(exc)


def proof_jkt() -> str | None:
    """The thumbprint of the token request's verified proof key, or None without a proof."""
    proof: Proof | None = g.get("dpop_proof")
    return proof.jkt if proof is not None else None


def bound_claims(jkt: str | None) -> dict[str, Any]:
    """§6.1: a bound JWT access token carries ``cnf.jkt``."""
    return {"cnf": {"jkt": jkt}} if jkt else {}


def token_type(jkt: str | None) -> str:
    """§5.1: ``token_type`` DPoP for a bound access token."""
    return "DPoP" if jkt else "Bearer"


def check_client_requirement(client: Any) -> None:
    """§5.2: a client registered with ``dpop_bound_access_tokens`` is refused without a proof,
    whatever the grant. Called once the client is authenticated at the token endpoint
    (``IdpAuthorizationServer.authenticate_client``), so before any grant looks at its code,
    device code, refresh token or subject token, and the refusal burns nothing. A client made
    DPoP-bound before DPoP was switched off is refused with the switch named
    (``unauthorized_client``: no proof could help it; idp.oauth.client_features)."""
    if not getattr(client, "dpop_bound_access_tokens", False):
        return
    if not _svc().enabled:
        raise UnauthorizedClientError(
            f"This client requires DPoP-bound access tokens (dpop_bound_access_tokens), but "
            f"{DPOP_OFF}: turn DPoP on, or clear the client's dpop_bound_access_tokens."
        )
    if proof_jkt() is None:
        raise InvalidDPoPProofError("This client must send a DPoP proof.")


def refresh_binding(client: Any) -> str | None:
    """§5: a public client's refresh token is bound to the proof's key; a confidential
    client's is not (it is bound to the client's authentication, and the client may move to a
    new DPoP key)."""
    return proof_jkt() if getattr(client, "is_public", False) else None


def check_refresh_binding(bound_jkt: str | None) -> None:
    """§5: a bound refresh token is used only with a proof of the same key."""
    if bound_jkt and proof_jkt() != bound_jkt:
        raise InvalidGrantError("The refresh token is bound to another DPoP key.")


class DPoPJktParameter:
    """§10: ``dpop_jkt`` at the authorization endpoint binds the code to a key (a grant
    extension, as Authlib's PKCE one). A malformed value is ``invalid_request`` at the
    redirect URI; the value rides on the code (``AuthorizationCode.dpop_jkt``)."""

    THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url SHA-256 (RFC 7638)

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        value = grant.request.payload.data.get("dpop_jkt")
        if value is None or not _svc().enabled:  # with DPoP off, an unknown parameter
            return
        if not self.THUMBPRINT.fullmatch(str(value)):
            raise InvalidRequestError("dpop_jkt must be a JWK SHA-256 thumbprint.")


def code_binding(value: str | None) -> str | None:
    """§10: the key a new code is bound to: the request's ``dpop_jkt`` (checked above, or set
    by the PAR endpoint from its proof, §10.1); none with DPoP off, where the parameter is an
    unknown one (RFC 6749 §3.1), as the ``DPoP`` header is then ignored."""
    return (value or None) if _svc().enabled else None


def check_code_binding(bound_jkt: str | None) -> None:
    """§10: a code requested with ``dpop_jkt`` is redeemed only with a proof of that key."""
    if bound_jkt and proof_jkt() != bound_jkt:
        raise InvalidGrantError("The code is bound to another DPoP key (dpop_jkt).")


# -------------------------------------------------------------------------- resources
def _challenges(error: str | None, description: str, status: int, dpop: bool) -> Response:
    """RFC 6750 §3 / RFC 9449 §7.1: the ``Bearer`` challenge, or the ``DPoP`` one when the
    request used DPoP; a ``DPoP`` challenge with ``algs`` is added whenever DPoP is on."""
    resp = Response(
        json.dumps({"error": error, "error_description": description} if error else {}),
        status=status,
        mimetype="application/json",
    )
    algs = f'algs="{" ".join(SIGNING_ALGS)}"'
    if dpop:
        value = f'DPoP error="{error}", error_description="{description}", {algs}'
        resp.headers["WWW-Authenticate"] = value
    else:
        bearer = 'Bearer realm="idp"'
        if error:
            bearer += f', error="{error}", error_description="{description}"'
        resp.headers["WWW-Authenticate"] = bearer
        if _svc().enabled:
            resp.headers.add("WWW-Authenticate", f"DPoP {algs}")
    resp.headers.update(NO_STORE)
    return add_nonce(resp) if dpop else resp


def _jkt(claims: dict[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def resource_claims(
    verify: Callable[[str], dict[str, Any] | None],
) -> tuple[dict[str, Any] | None, Response | None]:
    """The access token of a protected-resource request, as ``(claims, None)`` or ``(None,
    refusal)``: ``Authorization: DPoP`` with a proof of the token's key (§7.1, ``ath`` the
    token's hash), or a Bearer token (RFC 6750 §2.1 header, §2.2 body) that is not DPoP-bound
    (§7.2). ``verify`` returns a valid, unrevoked token's claims."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    value = value.strip()
    if scheme.lower() == "dpop" and _svc().enabled:
        if not value:
            return None, _challenges("invalid_request", "Missing the access token.", 401, True)
        try:
            proof = _check(request.path, access_token=value)
        except ProofError as exc:
            return None, _challenges(exc.error, exc.description, 401, True)
        claims = verify(value)
        if claims is None:
            return None, _challenges("invalid_token", "The access token is not valid.", 401, True)
        if _jkt(claims) != proof.jkt:
            message = "The access token is not bound to the DPoP proof's key."
            return None, _challenges("invalid_token", message, 401, True)
        return claims, None
    token = None
    if scheme.lower() == "bearer":
        token = value
    elif request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        token = request.form.get("access_token")  # never the query (OAuth 2.1 §5.1)
    if not token:
        return None, _challenges(None, "", 401, False)
    claims = verify(token)
    if claims is None:
        return None, _challenges("invalid_token", "The access token is not valid.", 401, False)
    if _jkt(claims) is not None:
        message = "A DPoP-bound access token is presented with the DPoP scheme and a proof."
        return None, _challenges("invalid_token", message, 401, False)
    return claims, None
