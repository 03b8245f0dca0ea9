"""The ``oidc`` protocol: any OpenID provider by its issuer (OIDC Core 1.0 §3.1, the
authorization code flow, with Discovery 1.0), and the presets that fill its options (Google,
Microsoft, Apple, GitLab, LinkedIn; an enterprise provider is this with ``domain_hint``).

``begin``: discovery, then the authorization request (§3.1.2.1) with PKCE S256 (RFC 7636),
``state`` and a fresh ``nonce``; ``response_mode=form_post`` when configured (OAuth 2.0 Form
Post Response Mode). ``finish``: RFC 9207's ``iss`` check, the code redeemed at the token
endpoint with the configured client authentication, the ID token validated
(:mod:`idtoken`), userinfo (§5.3) merged when configured.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from idp.connections.upstream import claims as claims_
from idp.connections.upstream import client_auth, discovery, idtoken, transport
from idp.connections.upstream.contract import Settings, Started, UpstreamError, UpstreamProfile

DEFAULT_SCOPES = ("openid", "profile", "email")
# Parameters idp sets itself: ``authorization_params`` cannot replace them.
RESERVED = frozenset({
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "response_mode", "request", "request_uri",
})  # fmt: skip


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to the query it may already have."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def authorization_params(
    options: dict[str, Any], *, client_id: str, redirect_uri: str, state: str,
    challenge: str, scopes: list[str],
) -> dict[str, str]:  # fmt: skip
    """The query of an authorization request: the operator's extras first, idp's own last."""
    extras = options.get("authorization_params") or {}
    params = {k: v for k, v in extras.items() if k not in RESERVED}
    params.update(
        response_type="code", client_id=client_id, redirect_uri=redirect_uri,
        scope=" ".join(scopes), state=state, code_challenge=challenge,
        code_challenge_method="S256",
    )  # fmt: skip
    if options.get("response_mode") == "form_post":
        params["response_mode"] = "form_post"
    return params


def begin(
    strategy: str, options: dict[str, Any], *, redirect_uri: str, state: str,
    login_hint: str | None, settings: Settings,
) -> Started:  # fmt: skip
    meta = discovery.metadata(options["issuer"], settings)
    verifier, challenge = client_auth.pkce_pair()
    nonce = secrets.token_urlsafe(24)
    scopes = list(options.get("scopes") or DEFAULT_SCOPES)
    if "openid" not in scopes:
        scopes.insert(0, "openid")  # without it the upstream answers plain OAuth, no ID token
    params = authorization_params(
        options, client_id=options["client_id"], redirect_uri=redirect_uri, state=state,
        challenge=challenge, scopes=scopes,
    )  # fmt: skip
    params["nonce"] = nonce
    if login_hint:
        params["login_hint"] = login_hint
    if options.get("domain_hint"):
        # Entra ID reads domain_hint, Google hd; each ignores the other.
        params["domain_hint"] = params["hd"] = options["domain_hint"]
    return Started(
        url=with_query(meta.authorization_endpoint, params),
        kept={"protocol": "oidc", "issuer": meta.issuer, "code_verifier": verifier,
              "nonce": nonce},
    )  # fmt: skip


def check_iss(params: dict[str, str], meta: discovery.Metadata) -> None:
    """RFC 9207 §2.4: an ``iss`` in the authorization response must be the issuer (a response
    from another provider was swapped in: mix-up, RFC 9700 §4.4); when the provider announces
    the parameter, a response without it is refused too."""
    iss = params.get("iss")
    if iss is not None and iss != meta.issuer:
        raise UpstreamError(
            "iss_mismatch", "The sign-in answer came from another provider.",
            "callback: iss is not the connection's issuer",
        )  # fmt: skip
    if iss is None and meta.iss_parameter_required:
        raise UpstreamError(
            "iss_missing", "The sign-in answer did not say which provider sent it.",
            "callback: iss missing although the provider announces it (RFC 9207)",
        )  # fmt: skip


def apple_user(params: dict[str, str]) -> dict[str, Any]:
    """Apple's name, sent once (first authorization) in the ``user`` form field as JSON
    ``{"name": {"firstName", "lastName"}, "email"}``. That field is not signed, so only the
    name is taken from it, never the email (which comes from the signed ID token)."""
    try:
        user = json.loads(params.get("user") or "null")
    except (ValueError, RecursionError):  # from the browser: anything, nested any depth
        return {}
    name = user.get("name") if isinstance(user, dict) else None
    if not isinstance(name, dict):
        return {}
    given, family = name.get("firstName"), name.get("lastName")
    found: dict[str, Any] = {}
    if isinstance(given, str) and given.strip():
        found["given_name"] = given.strip()
    if isinstance(family, str) and family.strip():
        found["family_name"] = family.strip()
    if found:
        found["name"] = " ".join(found[k] for k in ("given_name", "family_name") if k in found)
    return found


def redeem(
    options: dict[str, Any], meta: discovery.Metadata, *, code: str, redirect_uri: str,
    verifier: str, settings: Settings,
) -> dict[str, Any]:  # fmt: skip
    """RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}  # fmt: skip
    headers = client_auth.authenticate(options, form, meta.token_endpoint)
    return transport.post_token(
        meta.token_endpoint, form, hosts=meta.hosts, settings=settings, headers=headers
    )


def userinfo(
    meta: discovery.Metadata, access_token: str, sub: str, settings: Settings
) -> dict[str, Any]:
    """OIDC Core §5.3; §5.3.4: its ``sub`` must be the ID token's (else a token substitution)."""
    assert meta.userinfo_endpoint is not None
    answer = transport.get_json(
        meta.userinfo_endpoint, hosts=meta.hosts, settings=settings, reason="bad_userinfo",
        what="userinfo", headers={"Authorization": f"Bearer {access_token}"},
    )  # fmt: skip
    if not isinstance(answer, dict) or answer.get("sub") != sub:
        raise UpstreamError(
            "bad_userinfo", "The sign-in provider's profile does not match the sign-in.",
            "userinfo: sub is not the ID token's",
        )  # fmt: skip
    return answer


def finish(
    strategy: str, options: dict[str, Any], *, redirect_uri: str, params: dict[str, str],
    kept: dict[str, Any], settings: Settings,
) -> UpstreamProfile:  # fmt: skip
    issuer = options["issuer"]
    if kept.get("issuer") != issuer or not kept.get("code_verifier") or not kept.get("nonce"):
        raise UpstreamError(
            "bad_state", "The sign-in could not be completed. Please try again.",
            "kept data does not belong to this connection's issuer",
        )  # fmt: skip
    meta = discovery.metadata(issuer, settings)
    check_iss(params, meta)  # before anything else, error responses included (RFC 9207 §2.4)
    if params.get("error"):
        raise transport.upstream_error(params)
    code = params.get("code")
    if not code:
        raise UpstreamError(
            "missing_code", "The sign-in provider sent no authorization code.", "callback: no code"
        )
    answer = redeem(
        options, meta, code=code, redirect_uri=redirect_uri, verifier=kept["code_verifier"],
        settings=settings,
    )  # fmt: skip
    id_claims = idtoken.validate(
        answer.get("id_token"), issuer=issuer, client_id=options["client_id"],
        nonce=kept["nonce"], announced_algs=meta.id_token_algs,
        jwks=lambda unknown_kid: discovery.keys(meta, settings, unknown_kid=unknown_kid),
        access_token=answer["access_token"],
    )  # fmt: skip
    raw = dict(id_claims)
    if options.get("userinfo", True) and meta.userinfo_endpoint:
        raw = claims_.merge_userinfo(
            raw, userinfo(meta, answer["access_token"], id_claims["sub"], settings)
        )
    profile_claims = dict(raw)
    if strategy == "apple":
        for claim, value in apple_user(params).items():
            profile_claims.setdefault(claim, value)
    return claims_.profile(
        user_id=id_claims["sub"], email=raw.get("email"),
        email_verified=raw.get("email_verified"), claims=profile_claims, raw=raw,
        answer=answer, amr=id_claims.get("amr"),
    )  # fmt: skip
