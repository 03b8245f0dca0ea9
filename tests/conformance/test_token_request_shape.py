"""The token endpoint's checks around Authlib's grants, as the lean client-credentials path
(issue 18) does them: repeated parameters and client authentication methods (RFC 6749 §3.2,
OAuth 2.1 §3.2.4), Authlib's transport check (RFC 6749 §3.1.2.1, §10.9) on the request it is
given, and the headers every token response carries (security headers set once, CORS only for
a browser's request, no-store).
"""

from __future__ import annotations

from typing import Any

import requests

from tests.conformance._token_helpers import assert_oauth_error, client_credentials
from tests.helpers import jwt_parts

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _post(op: Any, body: str, **kwargs: Any) -> requests.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
    return requests.post(f"{op.url}/oauth/token", data=body, headers=headers, **kwargs)


def test_repeated_parameters_name_the_first_in_order(op: Any) -> None:
    m2m, audience = op.factory.m2m()
    resp = _post(op, f"grant_type=client_credentials&audience={audience}&audience={audience}"
                     "&scope=read:things&scope=read:things", auth=m2m.basic)  # fmt: skip
    assert_oauth_error(resp, 400, "invalid_request")
    assert resp.json()["error_description"] == "Parameter 'scope' is repeated."
    # a repeated parameter the endpoint does not know is not refused
    ok = _post(op, f"grant_type=client_credentials&audience={audience}&x=1&x=2", auth=m2m.basic)
    assert ok.status_code == 200, ok.text


def test_one_client_authentication_method(op: Any) -> None:
    m2m, audience = op.factory.m2m()
    both_in_form = _post(
        op,
        f"grant_type=client_credentials&audience={audience}&client_id={m2m.client_id}"
        f"&client_secret={m2m.client_secret}&client_assertion_type={JWT_BEARER}"
        "&client_assertion=a.b.c",
    )
    assert_oauth_error(both_in_form, 400, "invalid_request")
    assert both_in_form.json()["error_description"] == "Use one client authentication method only."
    basic_and_assertion = _post(
        op,
        f"grant_type=client_credentials&audience={audience}"
        f"&client_assertion_type={JWT_BEARER}&client_assertion=a.b.c",
        auth=m2m.basic,
    )
    assert_oauth_error(basic_and_assertion, 400, "invalid_request")
    # an empty client_secret is no second method: Basic authenticates
    basic_and_empty = _post(
        op, f"grant_type=client_credentials&audience={audience}&client_secret=", auth=m2m.basic
    )
    assert basic_and_empty.status_code == 200, basic_and_empty.text


def test_missing_grant_type(op: Any) -> None:
    m2m, _audience = op.factory.m2m()
    for body in ("scope=read:things", "grant_type="):
        resp = _post(op, body, auth=m2m.basic)
        assert_oauth_error(resp, 400, "invalid_request")
        assert resp.json()["error_description"] == "Missing 'grant_type'."


def test_transport_check_still_applies(op: Any) -> None:
    """Authlib refuses a token request over plain HTTP to a host that is not loopback; the
    request object it is given is built from the request's own scheme and host."""
    m2m, audience = op.factory.m2m()
    client = op.app.test_client()
    form = {"grant_type": "client_credentials", "audience": audience}
    auth = (m2m.client_id, m2m.client_secret)
    plain = client.post("/oauth/token", data=form, auth=auth, base_url="http://idp.example.test")
    assert plain.status_code == 500, plain.get_data(as_text=True)
    assert plain.json == {"error": "server_error", "error_description": "Internal error."}
    secure = client.post("/oauth/token", data=form, auth=auth, base_url="https://idp.example.test")
    assert secure.status_code == 200, secure.get_data(as_text=True)
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert jwt_parts(secure.json["access_token"])[1]["aud"] == audience


def test_token_response_headers(op: Any) -> None:
    m2m, audience = op.factory.m2m()
    resp = client_credentials(op, m2m, audience=audience)
    assert resp.status_code == 200, resp.text
    names = [name.lower() for name in resp.raw.headers]
    for name in ("x-content-type-options", "referrer-policy", "x-frame-options",
                 "content-security-policy", "cache-control", "pragma"):  # fmt: skip
        assert names.count(name) == 1, (name, resp.raw.headers)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Pragma"] == "no-cache"
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP (loopback)
    browser = _post(op, f"grant_type=client_credentials&audience={audience}", auth=m2m.basic,
                    headers={"Origin": "https://app.example.test"})  # fmt: skip
    assert browser.status_code == 200, browser.text
    assert browser.headers["Access-Control-Allow-Origin"] == "*"
    assert browser.headers["Access-Control-Expose-Headers"] == "DPoP-Nonce, WWW-Authenticate"
