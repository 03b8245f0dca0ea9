"""The ``claims`` request parameter (OIDC Core §5.5): which claims go in the ID token and which
at userinfo.

Shape (§5.5): a JSON object whose ``id_token`` and ``userinfo`` members, when present, are
objects mapping a claim name to ``null`` or to ``{"essential": bool, "value": v, "values":
[...]}``; other top-level members are ignored (§5.5: "not understood"). Anything else is
``invalid_request`` at the validated redirect URI.

What is released: a requested claim the user has, among the standard claims (§5.1), put where
it was asked for (the ID token, userinfo, or both); userinfo still releases what the granted
scopes release (§5.4), the requested claims in addition (§5.5). Non-standard names are
ignored, and ``value``/``values`` never change a claim's value (idp never invents one); only
``acr`` honours them (§5.5.1.1, :mod:`idp.oauth.acr`).

Consent: like node-oidc-provider, whose grants record the claims a user allowed apart from the
scopes, a claim asked for by name needs the user's consent. idp's consent is kept per scope, so
a requested claim counts as asking for the scope that releases it (§5.4: ``email`` for
``email``); a third-party application's consent page asks for that scope, first-party
applications are never asked (as for scopes). The token's ``scope`` stays what was requested.

The released names travel with the login: kept with the interaction (the request's
parameters), then on the code, the refresh token and each access token (``claims``), so that
the token endpoint and userinfo answer as the authorization request asked.
"""

from __future__ import annotations

import json
from typing import Any

from idp.extensions import Services
from idp.identity import profile
from idp.oauth.discovery import contributes

MAX_LENGTH = 4096  # of the parameter; what is kept of it is a short list of names
MAX_CLAIMS = 64  # per member
MEMBERS = ("id_token", "userinfo")
CLAIM_SCOPE = {claim: scope for scope, claims in profile.SCOPE_CLAIMS.items() for claim in claims}

ClaimsRequest = dict[str, dict[str, dict[str, Any] | None]]


class ClaimsError(ValueError):
    """The parameter is not what §5.5 describes (answered ``invalid_request``)."""


def parse(raw: str | None) -> ClaimsRequest:
    """The parameter, checked and normalised to ``{member: {claim: None | spec}}``."""
    if raw is None or raw == "":
        return {}
    if len(raw) > MAX_LENGTH:
        raise ClaimsError(f"claims is longer than {MAX_LENGTH} characters")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ClaimsError("claims is not valid JSON") from None
    if not isinstance(data, dict):
        raise ClaimsError("claims must be a JSON object")
    out: ClaimsRequest = {}
    for member in MEMBERS:
        if member not in data or data[member] is None:
            continue
        requested = data[member]
        if not isinstance(requested, dict):
            raise ClaimsError(f"claims.{member} must be a JSON object")
        if len(requested) > MAX_CLAIMS:
            raise ClaimsError(f"claims.{member} names more than {MAX_CLAIMS} claims")
        out[member] = {name: _spec(member, name, spec) for name, spec in requested.items()}
    return out


def _spec(member: str, name: str, spec: Any) -> dict[str, Any] | None:
    """One claim's request (§5.5.1): null, or an object with optional essential, value,
    values; acr's values must be strings, since they are compared with ours."""
    where = f"claims.{member}.{name[:64]}"
    if not name or len(name) > 255:
        raise ClaimsError(f"claims.{member} has an empty or overlong claim name")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ClaimsError(f"{where} must be null or a JSON object")
    if "essential" in spec and not isinstance(spec["essential"], bool):
        raise ClaimsError(f"{where}.essential must be true or false")
    if "values" in spec and not isinstance(spec["values"], list):
        raise ClaimsError(f"{where}.values must be an array")
    if name == "acr":
        values = [*spec.get("values", []), *([spec["value"]] if "value" in spec else [])]
        if not all(isinstance(v, str) and v for v in values):
            raise ClaimsError(f"{where}: acr values must be non-empty strings")
    return {k: spec[k] for k in ("essential", "value", "values") if k in spec}


def of_params(params: dict[str, str]) -> ClaimsRequest:
    """The request's claims, already validated when the request was (so never raises)."""
    try:
        return parse(params.get("claims"))
    except ClaimsError:
        return {}


def released_names(params: dict[str, str]) -> dict[str, list[str]] | None:
    """What the code carries: the standard claims requested per member (None: no request)."""
    request = of_params(params)
    names = {
        member: [name for name in request[member] if name in CLAIM_SCOPE]
        for member in MEMBERS
        if member in request
    }
    return {k: v for k, v in names.items() if v} or None


def subject_value(params: dict[str, str]) -> str | None:
    """``id_token.sub``'s ``value`` (§5.5.1): only that user may be answered positively, as
    with ``id_token_hint``'s subject (the login prompt's ``id_token_hint_mismatch`` check)."""
    spec = of_params(params).get("id_token", {}).get("sub") or {}
    value = spec.get("value")
    return value[:255] if isinstance(value, str) and value else None


def consent_scope(scope: str, params: dict[str, str]) -> str:
    """``scope`` plus the scopes that release the claims requested by name (see the module's
    docstring): what consent is asked and recorded for."""
    wanted = scope.split()
    for names in (released_names(params) or {}).values():
        wanted += [CLAIM_SCOPE[n] for n in names if CLAIM_SCOPE[n] not in wanted]
    return " ".join(wanted)


@contributes
def _discovery(document: dict[str, Any], svc: Services) -> None:
    """OIDC Discovery §3."""
    document["claims_parameter_supported"] = True
