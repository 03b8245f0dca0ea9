"""The metadata's lists of values and its booleans, each as idp behaves
(tests/conformance/test_discovery_matches_configuration.py): a listed value works, and the
other values a client might try (``UNIVERSE``) are refused; a boolean is what a request sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.conformance._discovery_probes import (
    ISSUER,
    TOKEN_EXCHANGE,
    Idp,
    redirect_error,
)
from tests.helpers import auth_params, pkce

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# What a client might ask for, listed or not (the registries of OAuth and OIDC)
UNIVERSE: dict[str, tuple[str, ...]] = {
    "grant_types_supported": (
        "authorization_code", "refresh_token", "client_credentials", DEVICE_GRANT,
        TOKEN_EXCHANGE, "password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:openid:params:grant-type:ciba",
    ),
    "response_types_supported": (
        "code", "token", "id_token", "code id_token", "code token", "id_token token",
        "code id_token token", "none",
    ),
    "response_modes_supported": ("query", "fragment", "form_post", "jwt", "query.jwt",
                                 "form_post.jwt"),
    "code_challenge_methods_supported": ("S256", "plain"),
    "ui_locales_supported": ("en", "fr", "de", "es", "ja"),
    "acr_values_supported": ("urn:idp:acr:single-factor",
                             "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
                             "urn:mace:incommon:iap:silver", "phr"),
}  # fmt: skip


def grant_type(idp: Idp, grant: str, listed: bool) -> None:
    """RFC 8414 ``grant_types_supported``: a listed grant is the token endpoint's (any answer
    but ``unsupported_grant_type``), any other is ``unsupported_grant_type`` (RFC 6749 §5.2)."""
    client = idp.client()
    resp = idp.post("/oauth/token", data={"grant_type": grant}, auth=client.basic)
    assert resp.status_code == 400, (grant, resp.text)
    error = (resp.json or {}).get("error")
    assert (error != "unsupported_grant_type") == listed, (grant, listed, resp.text)


def _authorize(idp: Idp, **extra: Any) -> Any:
    client = idp.client()
    _verifier, challenge = pkce()
    return idp.get("/authorize", query_string=auth_params(client, challenge, **extra))


def response_type(idp: Idp, value: str, listed: bool) -> None:
    resp = _authorize(idp, response_type=value)
    if listed:
        assert resp.status_code == 200 and redirect_error(resp) is None, (value, resp.status_code)
    else:
        assert redirect_error(resp) == "unsupported_response_type", value


def response_mode(idp: Idp, value: str, listed: bool) -> None:
    """A listed mode carries the answer (here ``login_required``, for ``prompt=none``); an
    unknown one is an error page, not a redirect the client could not read."""
    resp = _authorize(idp, response_mode=value, prompt="none")
    if not listed:
        assert resp.status_code == 400 and "Location" not in resp.headers, (value, resp.status_code)
    elif value == "query":
        assert redirect_error(resp) == "login_required"
    else:
        assert value == "form_post", f"{value}: teach response_mode how it answers"
        assert resp.status_code == 200 and 'action="https://rp.test/cb"' in resp.text
        assert re.search(r'name="error" value="login_required"', resp.text), resp.text


def code_challenge_method(idp: Idp, value: str, listed: bool) -> None:
    resp = _authorize(idp, code_challenge_method=value)
    if listed:
        assert resp.status_code == 200 and redirect_error(resp) is None, value
    else:
        assert redirect_error(resp) == "invalid_request", value


def ui_locale(idp: Idp, value: str, listed: bool) -> None:
    """OIDC Core §3.1.2.1 ``ui_locales``: the login page speaks a listed locale."""
    resp = _authorize(idp, ui_locales=value)
    lang = re.search(r'<html lang="([^"]+)"', resp.text)
    assert resp.status_code == 200 and lang, value
    assert (lang.group(1) == value) == listed, (value, lang.group(1))


def acr_value(idp: Idp, value: str, listed: bool) -> None:
    """OIDC Core §5.5.1.1: an essential ``acr`` a login here can meet goes on to the login;
    one no login here meets is ``access_denied`` at once."""
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [value]}}})
    resp = _authorize(idp, claims=claims)
    if listed:
        assert resp.status_code == 200 and redirect_error(resp) is None, value
    else:
        assert redirect_error(resp) == "access_denied", value


VALUE_PROBES: dict[str, Callable[[Idp, str, bool], None]] = {
    "grant_types_supported": grant_type,
    "response_types_supported": response_type,
    "response_modes_supported": response_mode,
    "code_challenge_methods_supported": code_challenge_method,
    "ui_locales_supported": ui_locale,
    "acr_values_supported": acr_value,
}


# ------------------------------------------------------------------------------- booleans
def claims_parameter(idp: Idp, value: bool) -> None:
    """OIDC Core §5.5: the parameter is read (a malformed one is refused, not ignored)."""
    assert value is True
    assert redirect_error(_authorize(idp, claims="{not json")) == "invalid_request"


def request_parameter(idp: Idp, value: bool) -> None:
    """RFC 9101: the parameter is read (an unsigned object is refused; signed ones are taken:
    the request object algorithms' probes)."""
    assert value is True
    resp = _authorize(idp, request="eyJhbGciOiJub25lIn0.eyJ9.")
    assert redirect_error(resp) == "invalid_request_object"


def request_uri_parameter(idp: Idp, value: bool) -> None:
    """False: a request_uri not from PAR is ``request_uri_not_supported`` (RFC 9101 §7.2)."""
    assert value is False
    resp = _authorize(idp, request_uri="https://rp.test/request.jwt")
    assert redirect_error(resp) == "request_uri_not_supported"


def iss_parameter(idp: Idp, value: bool) -> None:
    """RFC 9207 §2: the authorization response names the issuer."""
    assert value is True
    resp = _authorize(idp, prompt="none")
    assert redirect_error(resp) == "login_required"
    assert f"iss={ISSUER.replace(':', '%3A').replace('/', '%2F')}" in resp.headers["Location"]


def frontchannel_logout(idp: Idp, value: bool) -> None:
    """False: no front-channel logout is done, and none is asked of the OP (nothing to send)."""
    assert value is False


BOOLEAN_PROBES: dict[str, Callable[[Idp, bool], None]] = {
    "claims_parameter_supported": claims_parameter,
    "request_parameter_supported": request_parameter,
    "request_uri_parameter_supported": request_uri_parameter,
    "authorization_response_iss_parameter_supported": iss_parameter,
    "frontchannel_logout_supported": frontchannel_logout,
}
