"""The ``oauth2`` protocol: providers without OpenID Connect (RFC 6749 §4.1), configured by
URLs and a mapping of their profile JSON; the GitHub and Facebook presets fill those options.

The flow is the code flow with PKCE S256 (RFC 7636; a provider that does not support PKCE
ignores the parameters, RFC 6749 §3.1), the token answer read as JSON (``Accept:
application/json``: GitHub answers form-encoded otherwise), the profile fetched with the
access token as a Bearer token (RFC 6750 §2.1). With ``emails_url`` (GitHub's ``/user/emails``)
the email is the *verified primary* one only: a profile's own ``email`` field is whatever the
user typed, and trusting it is how "nOAuth"-style takeovers happen.
"""

from __future__ import annotations

from typing import Any

from idp.connections.upstream import claims as claims_
from idp.connections.upstream import client_auth, transport
from idp.connections.upstream.contract import Settings, Started, UpstreamError, UpstreamProfile
from idp.connections.upstream.oidc import authorization_params, with_query

_MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (``picture.data.url``; a numeric part indexes a list), or
    None when any step is missing."""
    value: Any = document
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is _MISSING:
            return None
    return value


def _hosts(options: dict[str, Any]) -> frozenset[str]:
    return transport.hosts_of(
        [options["token_url"], options["profile_url"], options.get("emails_url")]
    )


def begin(
    strategy: str, options: dict[str, Any], *, redirect_uri: str, state: str,
    login_hint: str | None, settings: Settings,
) -> Started:  # fmt: skip
    verifier, challenge = client_auth.pkce_pair()
    params = authorization_params(
        options, client_id=options["client_id"], redirect_uri=redirect_uri, state=state,
        challenge=challenge, scopes=list(options.get("scopes") or []),
    )  # fmt: skip
    if not params["scope"]:
        del params["scope"]  # §3.3: optional; the provider's default applies
    # login_hint is OIDC's (§3.1.2.1); plain OAuth providers have their own, if any (GitHub:
    # ``login``), which an operator sets through authorization_params.
    return Started(
        url=with_query(options["authorization_url"], params),
        kept={"protocol": "oauth2", "code_verifier": verifier},
    )


def _user_id(profile: dict[str, Any], path: str) -> str:
    value = lookup(profile, path)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise UpstreamError(
            "bad_profile", "The sign-in provider's profile has no user id.",
            f"profile: nothing usable at {path!r}",
        )  # fmt: skip
    user_id = str(value)
    if len(user_id) > 255:
        raise UpstreamError(
            "bad_profile", "The sign-in provider's profile has no user id.",
            "profile: user id too long",
        )  # fmt: skip
    return user_id


def verified_primary(emails: Any) -> str | None:
    """GitHub's ``[{email, primary, verified}, ...]``: the primary address if it is verified,
    else None (a verified secondary is not the account's address)."""
    if not isinstance(emails, list):
        raise UpstreamError(
            "bad_profile", "The sign-in provider's email list could not be read.",
            "emails: not a list",
        )  # fmt: skip
    for entry in emails:
        if (isinstance(entry, dict) and entry.get("primary") is True
                and entry.get("verified") is True and isinstance(entry.get("email"), str)
                and entry["email"]):  # fmt: skip
            return str(entry["email"])
    return None


def finish(
    strategy: str, options: dict[str, Any], *, redirect_uri: str, params: dict[str, str],
    kept: dict[str, Any], settings: Settings,
) -> UpstreamProfile:  # fmt: skip
    if not kept.get("code_verifier"):
        raise UpstreamError(
            "bad_state", "The sign-in could not be completed. Please try again.",
            "kept data has no code_verifier",
        )  # fmt: skip
    if params.get("error"):
        raise transport.upstream_error(params)
    code = params.get("code")
    if not code:
        raise UpstreamError(
            "missing_code", "The sign-in provider sent no authorization code.", "callback: no code"
        )
    hosts = _hosts(options)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": kept["code_verifier"]}  # fmt: skip
    headers = client_auth.authenticate(options, form, options["token_url"])
    answer = transport.post_token(
        options["token_url"], form, hosts=hosts, settings=settings, headers=headers
    )
    bearer = {"Authorization": f"Bearer {answer['access_token']}"}
    profile = transport.get_json(
        options["profile_url"], hosts=hosts, settings=settings, reason="bad_profile",
        what="profile", headers=bearer,
    )  # fmt: skip
    if not isinstance(profile, dict):
        raise UpstreamError(
            "bad_profile", "The sign-in provider's profile could not be read.",
            "profile: not a JSON object",
        )  # fmt: skip
    mapping: dict[str, str] = options.get("map") or {}
    user_id = _user_id(profile, mapping.get("user_id", "id"))
    mapped = {field: lookup(profile, path) for field, path in mapping.items()}
    email, email_verified = mapped.get("email"), mapped.get("email_verified")
    if options.get("emails_url"):
        email = verified_primary(
            transport.get_json(
                options["emails_url"], hosts=hosts, settings=settings, reason="bad_profile",
                what="emails", headers=bearer,
            )
        )  # fmt: skip
        email_verified = email is not None
    standard = {k: v for k, v in mapped.items() if isinstance(v, str) and v}
    return claims_.profile(
        user_id=user_id, email=email, email_verified=email_verified, claims=standard,
        raw=profile, answer=answer,
    )  # fmt: skip
