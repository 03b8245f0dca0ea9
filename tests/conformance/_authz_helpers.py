"""Shared drivers and assertions for the discovery and authorization-endpoint conformance tests.

Everything here talks to the OP over HTTP only (``requests`` with ``allow_redirects=False``), so
each check sees the exact status code and ``Location`` the OP produced.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import TestClient, TestUser
from tests.helpers import Browser, auth_params, jwt_parts, pkce, redeem

# RFC 6749 §4.1.2.1 + OIDC Core §3.1.2.6 + RFC 9101 §6.3 + RFC 9207: what an error redirect may
# carry, and the error codes registered for the authorization endpoint.
ALLOWED_ERROR_KEYS = {"error", "error_description", "error_uri", "state", "session_state", "iss"}
REGISTERED_AUTHZ_ERRORS = {
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
}
# RFC 6749 §4.1.2.1: error / error_description characters are %x20-21 / %x23-5B / %x5D-7E.
ERROR_CHARSET = re.compile(r"^[\x20\x21\x23-\x5B\x5D-\x7E]*$")
SUCCESS_KEYS = {"code", "state", "iss"}
REDIRECT_STATUSES = (302, 303)


def authorize_endpoint(base: str) -> str:
    return f"{base}/authorize"


def send_authorize(
    base: str,
    params: dict[str, Any] | list[tuple[str, str]],
    method: str = "GET",
    http: requests.Session | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """One request to the authorization endpoint, redirects not followed."""
    agent = http or requests.Session()
    url = authorize_endpoint(base)
    if method == "GET":
        return agent.get(url, params=params, allow_redirects=False, headers=headers)
    return agent.post(url, data=params, allow_redirects=False, headers=headers)


def query_pairs(location: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(location).query, keep_blank_values=True)


def query_dict(location: str) -> dict[str, str]:
    pairs = query_pairs(location)
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a response parameter is repeated: {location}"
    return dict(pairs)


def assert_error_page(resp: requests.Response, statuses: tuple[int, ...] = (400,)) -> None:
    """The OP shows an HTML error page itself: no redirect anywhere (CONFORMANCE §1.2)."""
    assert resp.status_code in statuses, (resp.status_code, resp.headers.get("Location"))
    assert "Location" not in resp.headers, resp.headers["Location"]
    assert resp.headers.get("Content-Type", "").startswith("text/html"), resp.headers


def check_error_params(params: dict[str, str], issuer: str) -> None:
    """AZ-14: shape and charset of an authorization error response."""
    assert "code" not in params, params
    assert set(params) <= ALLOWED_ERROR_KEYS, set(params) - ALLOWED_ERROR_KEYS
    assert params.get("error") in REGISTERED_AUTHZ_ERRORS, params
    assert ERROR_CHARSET.match(params["error"]), params["error"]
    description = params.get("error_description")
    if description is not None:
        assert ERROR_CHARSET.match(description), repr(description)
        assert not set("\r\n\t") & set(description), repr(description)
    assert params.get("iss") == issuer, params


def assert_error_redirect(
    resp: requests.Response,
    redirect_uri: str,
    issuer: str,
    error: str | tuple[str, ...],
    state: str | None,
) -> dict[str, str]:
    """An error sent back to the (validated) redirect URI with ``iss`` and the exact state."""
    assert resp.status_code in REDIRECT_STATUSES, (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(redirect_uri + ("&" if "?" in redirect_uri else "?")), location
    params = query_dict(location)
    for key, value in parse_qsl(urlsplit(redirect_uri).query):
        assert params.pop(key, None) == value, (key, location)
    check_error_params(params, issuer)
    expected = (error,) if isinstance(error, str) else error
    assert params["error"] in expected, params
    if state is None:
        assert "state" not in params, params
    else:
        assert params.get("state") == state, params
    assert not urlsplit(location).fragment, location
    return params


def assert_success_redirect(
    location: str, redirect_uri: str, issuer: str, state: str | None
) -> dict[str, str]:
    """A code response in the query (the default response mode) with iss and the exact state."""
    assert location.startswith(redirect_uri + ("&" if "?" in redirect_uri else "?")), location
    assert not urlsplit(location).fragment, location
    params = query_dict(location)
    for key, value in parse_qsl(urlsplit(redirect_uri).query):
        assert params.pop(key, None) == value, (key, location)
    assert set(params) <= SUCCESS_KEYS, params
    assert params.get("code"), params
    assert params.get("iss") == issuer, params
    if state is None:
        assert "state" not in params, params
    else:
        assert params.get("state") == state, params
    return params


@dataclass
class LoggedIn:
    """A browser with an OP session, and the tokens of the login that created it."""

    browser: Browser
    tokens: dict[str, Any]

    @property
    def id_claims(self) -> dict[str, Any]:
        return jwt_parts(self.tokens["id_token"])[1]


def log_in(base: str, client: TestClient, user: TestUser, **extra: Any) -> LoggedIn:
    browser = Browser(base)
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge, **extra), user)
    assert result.code, (result.status, result.params, result.page[:300])
    assert result.login_shown
    resp = redeem(base, client, result.code, verifier)
    assert resp.status_code == 200, resp.text
    return LoggedIn(browser, resp.json())


def code_flow(
    base: str,
    client: TestClient,
    browser: Browser,
    user: TestUser | None = None,
    **extra: Any,
) -> tuple[Any, dict[str, Any] | None]:
    """Authorize with ``browser`` (logging in as ``user`` when asked) and redeem any code.

    :returns: (AuthResult, token JSON or None when no code came back)."""
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge, **extra), user)
    if not result.code:
        return result, None
    redirect_uri = extra.get("redirect_uri") or client.redirect_uri
    resp = redeem(base, client, result.code, verifier, redirect_uri=redirect_uri)
    assert resp.status_code == 200, resp.text
    return result, resp.json()


def jwks(base: str) -> KeySet:
    return KeySet.import_key_set(requests.get(f"{base}/.well-known/jwks.json").json())


def verify(base: str, token: str) -> dict[str, Any]:
    """Verify a JWS against the OP's published JWKS (RS256 only) and return its claims."""
    decoded = jwt.decode(token, jwks(base), algorithms=["RS256"])
    return dict(decoded.claims)


def random_state(length: int) -> str:
    """A state of exactly ``length`` characters, using every unreserved punctuation mark."""
    core = secrets.token_urlsafe(length)[: max(length - 4, 0)]
    return (core + "-._~")[-length:]
