"""Authentication Context Class References (OIDC Core §2 ``acr``, §3.1.2.1 ``acr_values``,
§5.5.1.1 ``acr`` requested through ``claims``).

idp's values (advertised as ``acr_values_supported``):

- ``urn:idp:acr:single-factor``: one factor (a password, a passkey used as a password, an upstream
  login); what every login achieves at least.
- ``http://schemas.openid.net/pape/policies/2007/06/multi-factor`` (the PAPE multi-factor
  policy, what Auth0 uses): a second factor was passed in this session (``mfa`` in ``amr``).
  ``mfa`` and ``urn:idp:acr:mfa`` are accepted as requests for it.

A multi-factor login meets a request for the password level too. Asking for a value MFA meets
steps the login up (``idp.mfa.policy``). A voluntary request (``acr_values``, or ``acr`` through
``claims`` without ``essential``) that is not met still logs in with the level achieved; an
essential one (§5.5.1.1) that cannot be met is ``access_denied`` ("an authentication failure").
The ID token's ``acr`` is the first requested value the login meets, else the level achieved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.extensions import Services
from idp.oauth import claims_request
from idp.oauth.acr_names import ACR_ASKING_FOR_MFA, MFA_ACR
from idp.oauth.discovery import contributes

SINGLE_FACTOR_ACR = "urn:idp:acr:single-factor"
SUPPORTED = (SINGLE_FACTOR_ACR, MFA_ACR)


@dataclass(frozen=True)
class AcrRequest:
    values: tuple[str, ...]  # in the client's order of preference
    essential: bool


def requested(params: dict[str, str]) -> AcrRequest:
    """``claims``'s ``id_token.acr`` (§5.5.1.1) when it names values, else ``acr_values``."""
    spec = claims_request.of_params(params).get("id_token", {}).get("acr") or {}
    values = [*spec.get("values", []), *([spec["value"]] if "value" in spec else [])]
    if values:
        return AcrRequest(tuple(dict.fromkeys(values)), bool(spec.get("essential")))
    return AcrRequest(tuple(dict.fromkeys(params.get("acr_values", "").split())), False)


def mfa_requested(params: dict[str, str]) -> bool:
    """A requested value only MFA meets (the MFA prompt then fires, ``idp.mfa.policy``)."""
    return bool(set(requested(params).values) & ACR_ASKING_FOR_MFA)


def achieved(amr: list[str] | None) -> str:
    return MFA_ACR if "mfa" in (amr or []) else SINGLE_FACTOR_ACR


def meets(level: str, value: str) -> bool:
    if value in ACR_ASKING_FOR_MFA:
        return level == MFA_ACR
    return value == SINGLE_FACTOR_ACR


def attainable(params: dict[str, str]) -> bool:
    """False when an essential request names only values no login here can meet."""
    req = requested(params)
    return not req.essential or any(meets(MFA_ACR, v) for v in req.values)


def answer(params: dict[str, str], amr: list[str] | None) -> str | None:
    """The ``acr`` to put in the ID token; None when an essential request is not met."""
    req = requested(params)
    level = achieved(amr)
    met = next((v for v in req.values if meets(level, v)), None)
    if met is None and req.essential:
        return None
    # a value the client asked for, in its own spelling; an alias ("mfa") answers our URI
    return MFA_ACR if met in ACR_ASKING_FOR_MFA else (met or level)


@contributes
def _discovery(document: dict[str, Any], svc: Services) -> None:
    """OIDC Discovery §3 ``acr_values_supported``."""
    document["acr_values_supported"] = list(SUPPORTED)
