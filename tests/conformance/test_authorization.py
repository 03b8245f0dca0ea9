"""Authorization endpoint: CONFORMANCE.md §2.2 (AZ-*), ISS-01, and SECURITY.md §2.1-2.2
(S-AZ-*, S-PK-* authorization side). Black box over HTTP; redirects are never followed blindly.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.core.errors import ValidationError
from tests.conformance._authz_helpers import (
    REDIRECT_STATUSES,
    assert_error_page,
    assert_error_redirect,
    assert_success_redirect,
    check_error_params,
    code_flow,
    log_in,
    query_dict,
    random_state,
    send_authorize,
)
from tests.helpers import (
    Browser,
    auth_params,
    hidden_inputs,
    jwt_parts,
    login_form_action,
    pkce,
    redeem,
)

RP = "https://rp.test/cb"
EVIL = "https://evil.test/cb"


@pytest.fixture
def client(op):
    return op.factory.gen_client()


@pytest.fixture
def user(op):
    return op.factory.gen_user()


def _challenge() -> str:
    return pkce()[1]


def _redirected_error(op, client, params, error, method="GET") -> dict[str, str]:
    resp = send_authorize(op.url, params, method=method)
    return assert_error_redirect(resp, client.redirect_uri, op.url, error, params.get("state"))


# --- AZ-01 .. AZ-06 ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_az01_get_and_post_both_supported(op, client, user, method):
    browser = Browser(op.url)
    verifier, challenge = pkce()
    params = auth_params(client, challenge)
    result = browser.authorize(params, user, method=method)
    assert result.login_shown and result.code
    assert redeem(op.url, client, result.code, verifier).status_code == 200
    # With a session, the POSTed request itself is answered with the code.
    verifier, challenge = pkce()
    params = auth_params(client, challenge)
    resp = send_authorize(op.url, params, method=method, http=browser.http)
    assert resp.status_code in REDIRECT_STATUSES
    got = assert_success_redirect(resp.headers["Location"], RP, op.url, params["state"])
    assert redeem(op.url, client, got["code"], verifier).status_code == 200


def test_az02_unknown_parameters_ignored(op, client, user):
    result, tokens = code_flow(op.url, client, Browser(op.url), user, extra="foobar", x_y="1")
    assert result.code and tokens and "id_token" in tokens


def test_az03_scope_and_parameter_order_do_not_matter(op, client, user):
    verifier, challenge = pkce()
    params = auth_params(client, challenge, scope="email openid")
    reordered = dict(reversed(list(params.items())))
    result = Browser(op.url).authorize(reordered, user)
    assert_success_redirect(result.location, RP, op.url, params["state"])
    resp = redeem(op.url, client, result.code, verifier)
    assert resp.status_code == 200
    assert "id_token" in resp.json()
    assert set(resp.json()["scope"].split()) == {"openid", "email"}


@pytest.mark.parametrize("param", ["client_id", "redirect_uri"])
def test_az04_duplicate_identity_parameter_error_page(op, client, param):
    params = list(auth_params(client, _challenge()).items())
    params.append((param, dict(params)[param]))
    assert_error_page(send_authorize(op.url, params))


@pytest.mark.parametrize(
    "param",
    ["scope", "state", "response_type", "nonce", "prompt", "max_age", "code_challenge_method"],
)
def test_az04_duplicate_parameter_invalid_request(op, client, param):
    """Client and redirect URI are valid, so the error goes back to the client (OAuth 2.1
    §4.1.2.1: "includes a parameter more than once" is an invalid_request)."""
    first, second = {
        "scope": ("openid", "openid email"),
        "state": ("s1", "s2"),
        "response_type": ("code", "code"),
        "nonce": ("n1", "n2"),
        "prompt": ("login", "login"),
        "max_age": ("60", "600"),
        "code_challenge_method": ("S256", "S256"),
    }[param]
    pairs = [*auth_params(client, _challenge(), **{param: first}).items(), (param, second)]
    resp = send_authorize(op.url, pairs)
    assert resp.status_code in REDIRECT_STATUSES, (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(RP + "?"), location
    got = query_dict(location)
    check_error_params(got, op.url)
    assert got["error"] == "invalid_request"


def test_az04_empty_value_counts_as_omitted(op, client, user):
    browser = Browser(op.url)
    result, _tokens = code_flow(op.url, client, browser, user, state="")
    assert_success_redirect(result.location, RP, op.url, None)
    params = auth_params(client, None, state="")
    assert_error_redirect(send_authorize(op.url, params), RP, op.url, "invalid_request", None)


def test_az05_missing_response_type(op, client):
    params = auth_params(client, _challenge(), response_type=None)
    resp = send_authorize(op.url, params)
    if resp.status_code == 400:
        assert_error_page(resp)
        return
    assert_error_redirect(
        resp, RP, op.url, ("invalid_request", "unsupported_response_type"), params["state"]
    )


@pytest.mark.parametrize("response_type", ["token", "code token", "id_token token", "id_token"])
def test_az06_implicit_and_hybrid_refused(op, client, response_type):
    params = auth_params(client, _challenge(), response_type=response_type)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, RP, op.url, "unsupported_response_type", params["state"])
    location = resp.headers["Location"]
    assert "access_token" not in location and "id_token=" not in location


# --- AZ-07 .. AZ-11: redirect URI and client validation -------------------------------------


def test_az07_unregistered_redirect_uri_no_redirect(op, client):
    other = op.factory.gen_client(redirect_uris=["https://other.test/cb"])
    for uri in (EVIL, other.redirect_uri):
        resp = send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=uri))
        assert_error_page(resp)


@pytest.mark.parametrize(
    "uri",
    [
        RP + "?foo=bar",
        RP + "/",
        "https://RP.test/cb",
        "https://rp.test/CB",
        "https://rp.test/c%62",
        "https://rp.test:443/cb",
        "http://rp.test/cb",
        RP + "#frag",
    ],
)
def test_az08_redirect_uri_exact_match(op, client, uri):
    assert_error_page(send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=uri)))


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.test/cb?tenant=b",
        "https://rp.test/cb?tenant=a&foo=bar",
        "https://rp.test/cb",
        "https://rp.test/cb?TENANT=a",
    ],
)
def test_az08_registered_query_must_match_exactly(op, uri):
    client = op.factory.gen_client(redirect_uris=["https://rp.test/cb?tenant=a"])
    assert_error_page(send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=uri)))


def test_az08_registered_query_is_kept(op, user):
    registered = "https://rp.test/cb?tenant=a"
    client = op.factory.gen_client(redirect_uris=[registered])
    verifier, challenge = pkce()
    params = auth_params(client, challenge)
    result = Browser(op.url).authorize(params, user)
    got = assert_success_redirect(result.location, registered, op.url, params["state"])
    assert query_dict(result.location)["tenant"] == "a"
    assert redeem(op.url, client, got["code"], verifier).status_code == 200


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:49152/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb"),
        ("http://[::1]/cb", "http://[::1]:61000/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"),
    ],
)
def test_az09_native_loopback_any_port(op, user, registered, requested):
    client = op.factory.gen_client("native", redirect_uris=[registered])
    result, tokens = code_flow(op.url, client, Browser(op.url), user, redirect_uri=requested)
    assert result.location.startswith(requested + "?"), result.location
    assert tokens is not None and "id_token" in tokens


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:49152/other",
        "http://127.0.0.1:49152/cb?x=1",
        "https://127.0.0.1:49152/cb",
        "http://127.0.0.2:49152/cb",
        "http://localhost:49152/cb",
    ],
)
def test_az09_native_loopback_rest_exact(op, requested):
    client = op.factory.gen_client("native", redirect_uris=["http://127.0.0.1/cb"])
    params = auth_params(client, _challenge(), redirect_uri=requested)
    assert_error_page(send_authorize(op.url, params))


def test_az09_port_exception_only_for_native_loopback(op):
    client = op.factory.gen_client("regular_web", redirect_uris=["http://127.0.0.1/cb"])
    params = auth_params(client, _challenge(), redirect_uri="http://127.0.0.1:49152/cb")
    assert_error_page(send_authorize(op.url, params))


@pytest.mark.parametrize("registered", [[RP, "https://rp.test/cb2"], [RP]])
def test_az10_missing_redirect_uri_error_page(op, registered):
    client = op.factory.gen_client(redirect_uris=registered)
    assert_error_page(send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=None)))


@pytest.mark.parametrize("client_id", ["nope", None, "x" * 200])
def test_az11_unknown_or_missing_client_id_error_page(op, client_id):
    params = auth_params(
        op.factory.gen_client(), _challenge(), client_id=client_id, redirect_uri=RP
    )
    assert_error_page(send_authorize(op.url, params))


# --- AZ-12 .. AZ-17: response shape ------------------------------------------------------


@pytest.mark.parametrize("length", [128, 384])
def test_az12_state_echoed_exactly(op, client, user, length):
    state = random_state(length)
    assert len(state) == length and "-._~" in state
    result, _ = code_flow(op.url, client, Browser(op.url), user, state=state)
    assert_success_redirect(result.location, RP, op.url, state)
    params = auth_params(client, _challenge(), state=state, prompt="none")
    assert_error_redirect(send_authorize(op.url, params), RP, op.url, "login_required", state)


def test_az12_no_state_when_none_sent(op, client, user):
    result, _ = code_flow(op.url, client, Browser(op.url), user, state=None)
    assert_success_redirect(result.location, RP, op.url, None)
    params = auth_params(client, _challenge(), state=None, prompt="none")
    assert_error_redirect(send_authorize(op.url, params), RP, op.url, "login_required", None)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"prompt": "none"}, "login_required"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"request": "e30.e30."}, "invalid_request_object"),
    ],
)
def test_az13_iss_on_error_responses(op, client, extra, error):
    params = auth_params(client, _challenge(), **extra)
    got = assert_error_redirect(send_authorize(op.url, params), RP, op.url, error, params["state"])
    assert got["iss"] == op.url


def test_az13_iss_on_success_response(op, client, user):
    result, _ = code_flow(op.url, client, Browser(op.url), user)
    assert query_dict(result.location)["iss"] == op.url


@pytest.mark.parametrize(
    "extra",
    [
        {"prompt": "none"},
        {"prompt": "none login"},
        {"code_challenge": None},
        {"code_challenge_method": "plain"},
        {"code_challenge": "a" * 42},
        {"response_type": None},
        {"response_type": "token"},
        {"response_type": 'to"ken\\'},
        {"response_type": "bad\r\nvalue\ttab"},
        {"response_type": "t\u00f6ken"},
        {"max_age": "soon"},
        {"request_uri": "https://rp.test/r"},
    ],
    ids=lambda e: repr(e),
)
def test_az14_error_response_shape(op, client, extra):
    params = auth_params(client, _challenge(), **extra)
    resp = send_authorize(op.url, params)
    assert resp.status_code in REDIRECT_STATUSES, (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(RP + "?"), location
    got = query_dict(location)
    check_error_params(got, op.url)
    assert got.get("state") == params["state"]


@pytest.mark.parametrize("mode", ["bogus", "fragment", "query.jwt", "web_message"])
def test_az15_unsupported_response_mode_error_page(op, client, mode):
    params = auth_params(client, _challenge(), response_mode=mode)
    assert_error_page(send_authorize(op.url, params))


def test_az16_code_in_query_only(op, client, user):
    result, _ = code_flow(op.url, client, Browser(op.url), user, scope="openid email")
    parts = urlsplit(result.location)
    assert parts.fragment == ""
    assert set(query_dict(result.location)) == {"code", "state", "iss"}
    for token_word in ("access_token", "id_token", "refresh_token", "token_type"):
        assert token_word not in result.location
    # response_mode=query explicitly is the same thing.
    result, _ = code_flow(op.url, client, Browser(op.url), user, response_mode="query")
    assert set(query_dict(result.location)) == {"code", "state", "iss"}


# --- AZ-18 .. AZ-21: PKCE and codes ------------------------------------------------------


@pytest.mark.parametrize("app_type", ["regular_web", "spa", "native"])
def test_az18_pkce_required_for_every_client(op, app_type):
    redirect = "http://127.0.0.1/cb" if app_type == "native" else RP
    client = op.factory.gen_client(app_type, redirect_uris=[redirect])
    params = auth_params(client, None)
    params.pop("code_challenge_method")
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, redirect, op.url, "invalid_request", params["state"])


@pytest.mark.parametrize("method", ["plain", "S512", "s256", "RS256"])
def test_az19_unsupported_challenge_method(op, client, method):
    params = auth_params(client, _challenge(), code_challenge_method=method)
    _redirected_error(op, client, params, "invalid_request")


@pytest.mark.parametrize(
    "challenge",
    ["a" * 42, "a" * 129, "A" * 40 + "+/=", "A" * 42 + " ", "A" * 42 + "%"],
    ids=["42", "129", "plus-slash-eq", "space", "percent"],
)
def test_az20_challenge_abnf(op, client, challenge):
    params = auth_params(client, challenge)
    _redirected_error(op, client, params, "invalid_request")


def test_az20_challenge_without_method_refused(op, client):
    params = auth_params(client, _challenge(), code_challenge_method=None)
    _redirected_error(op, client, params, "invalid_request")


@pytest.mark.parametrize("length", [43, 128])
def test_az20_challenge_length_bounds_accepted(op, client, user, length):
    challenge = ("abcXYZ019-._~" * 20)[:length]
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    assert result.code, (result.params, result.page[:200])


def test_az21_codes_are_random_and_unique(op, client, user):
    browser = Browser(op.url)
    codes = []
    for i in range(6):
        result = browser.authorize(auth_params(client, _challenge()), user if i == 0 else None)
        assert result.code
        codes.append(result.code)
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert re.fullmatch(r"[A-Za-z0-9\-._~]{22,}", code), code  # >= 128 bits if random


def _fresh_code(op, client, user, redirect_uri=None) -> tuple[str, str]:
    verifier, challenge = pkce()
    extra = {"redirect_uri": redirect_uri} if redirect_uri else {}
    result = Browser(op.url).authorize(auth_params(client, challenge, **extra), user)
    assert result.code
    return result.code, verifier


def test_az21_code_bound_to_client(op, client, user):
    code, verifier = _fresh_code(op, client, user)
    other = op.factory.gen_client()
    resp = redeem(op.url, other, code, verifier)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_az21_code_bound_to_redirect_uri(op, user):
    client = op.factory.gen_client(redirect_uris=[RP, "https://rp.test/cb2"])
    code, verifier = _fresh_code(op, client, user)
    resp = redeem(op.url, client, code, verifier, redirect_uri="https://rp.test/cb2")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_az21_code_bound_to_challenge(op, client, user):
    code, _verifier = _fresh_code(op, client, user)
    other_verifier, _ = pkce()
    resp = redeem(op.url, client, code, other_verifier)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_az21_code_lifetime(op, client, user, clock):
    code, verifier = _fresh_code(op, client, user)
    clock.advance(30)
    assert redeem(op.url, client, code, verifier).status_code == 200
    code, verifier = _fresh_code(op, client, user)
    clock.advance(61)
    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


# --- AZ-22 .. AZ-33: OIDC request semantics ----------------------------------------------


def test_az22_openid_scope_decides_id_token(op, client, user):
    browser = Browser(op.url)
    _, tokens = code_flow(op.url, client, browser, user, scope="email")
    assert tokens is not None and "id_token" not in tokens
    assert "openid" not in tokens.get("scope", "").split()
    _, tokens = code_flow(op.url, client, browser, scope="openid")
    assert tokens is not None and "id_token" in tokens


def test_az23_no_nonce_succeeds_without_nonce_claim(op, client, user):
    _, tokens = code_flow(op.url, client, Browser(op.url), user, nonce=None)
    assert tokens is not None
    assert "nonce" not in jwt_parts(tokens["id_token"])[1]
    nonce = secrets.token_urlsafe(12)
    _, tokens = code_flow(op.url, client, Browser(op.url), user, nonce=nonce)
    assert tokens is not None and jwt_parts(tokens["id_token"])[1]["nonce"] == nonce


def test_az24_prompt_none_without_session_login_required(op, client):
    params = auth_params(client, _challenge(), prompt="none", state=random_state(128))
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, RP, op.url, "login_required", params["state"])


def test_az25_prompt_none_with_session(op, client, user, clock):
    first = log_in(op.url, client, user)
    clock.advance(5)
    verifier, challenge = pkce()
    params = auth_params(client, challenge, prompt="none")
    resp = send_authorize(op.url, params, http=first.browser.http)
    got = assert_success_redirect(resp.headers.get("Location", ""), RP, op.url, params["state"])
    token = redeem(op.url, client, got["code"], verifier)
    assert token.status_code == 200
    claims = jwt_parts(token.json()["id_token"])[1]
    assert claims["sub"] == first.id_claims["sub"] == user.user_id
    assert claims["auth_time"] == first.id_claims["auth_time"]


@pytest.mark.parametrize(
    "prompt", ["none login", "login none", "none consent", "none select_account"]
)
def test_az27_prompt_none_combined_invalid_request(op, client, user, prompt):
    params = auth_params(client, _challenge(), prompt=prompt)
    _redirected_error(op, client, params, "invalid_request")
    # Also with a session: the combination is never answered with a code.
    session = log_in(op.url, client, user)
    params = auth_params(client, _challenge(), prompt=prompt)
    resp = send_authorize(op.url, params, http=session.browser.http)
    assert_error_redirect(resp, RP, op.url, "invalid_request", params["state"])


def test_az28_prompt_login_forces_reauthentication(op, client, user, clock):
    first = log_in(op.url, client, user)
    clock.advance(5)
    result, tokens = code_flow(op.url, client, first.browser, user, prompt="login")
    assert result.login_shown and tokens is not None
    claims = jwt_parts(tokens["id_token"])[1]
    assert claims["sub"] == user.user_id
    assert claims["auth_time"] > first.id_claims["auth_time"]


def test_az30_max_age_elapsed_forces_login(op, client, user, clock):
    first = log_in(op.url, client, user)
    clock.advance(2)
    result, tokens = code_flow(op.url, client, first.browser, user, max_age="1")
    assert result.login_shown and tokens is not None
    claims = jwt_parts(tokens["id_token"])[1]
    assert "auth_time" in claims
    assert claims["auth_time"] > first.id_claims["auth_time"]
    assert abs(claims["auth_time"] - claims["iat"]) <= 5


def test_az30_max_age_zero_acts_like_prompt_login(op, client, user, clock):
    first = log_in(op.url, client, user)
    clock.advance(1)
    result, tokens = code_flow(op.url, client, first.browser, user, max_age="0")
    assert result.login_shown and tokens is not None
    assert jwt_parts(tokens["id_token"])[1]["auth_time"] > first.id_claims["auth_time"]


def test_az30_large_max_age_keeps_session(op, client, user, clock):
    browser = Browser(op.url)
    result, first = code_flow(op.url, client, browser, user, max_age="15000")
    assert result.login_shown and first is not None
    clock.advance(3)
    result, second = code_flow(op.url, client, browser, max_age="10000")
    assert not result.login_shown and second is not None
    one, two = jwt_parts(first["id_token"])[1], jwt_parts(second["id_token"])[1]
    assert "auth_time" in one and one["auth_time"] == two["auth_time"]
    assert one["sub"] == two["sub"]


def test_az30_max_age_with_prompt_none_login_required(op, client, user, clock):
    first = log_in(op.url, client, user)
    clock.advance(3)
    params = auth_params(client, _challenge(), prompt="none", max_age="1")
    resp = send_authorize(op.url, params, http=first.browser.http)
    assert_error_redirect(resp, RP, op.url, "login_required", params["state"])


def test_az32_id_token_hint_current_user(op, client, user):
    first = log_in(op.url, client, user)
    verifier, challenge = pkce()
    params = auth_params(client, challenge, prompt="none", id_token_hint=first.tokens["id_token"])
    resp = send_authorize(op.url, params, http=first.browser.http)
    got = assert_success_redirect(resp.headers.get("Location", ""), RP, op.url, params["state"])
    token = redeem(op.url, client, got["code"], verifier)
    claims = jwt_parts(token.json()["id_token"])[1]
    assert claims["sub"] == first.id_claims["sub"]
    assert claims["auth_time"] == first.id_claims["auth_time"]


def test_az32_id_token_hint_other_user(op, client, user):
    first = log_in(op.url, client, user)
    other = log_in(op.url, client, op.factory.gen_user())
    hint = other.tokens["id_token"]
    params = auth_params(client, _challenge(), prompt="none", id_token_hint=hint)
    resp = send_authorize(op.url, params, http=first.browser.http)
    assert_error_redirect(resp, RP, op.url, "login_required", params["state"])
    # Without prompt=none the user is asked to log in again.
    params = auth_params(client, _challenge(), id_token_hint=hint)
    result = first.browser.authorize(params)
    assert result.login_shown and not result.location


def _forged(id_token: str, how: str) -> str:
    header, claims = jwt_parts(id_token)
    if how == "foreign_key":
        key = RSAKey.generate_key(2048, parameters={"kid": header["kid"]})
        return jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, key)
    if how == "alg_none":
        import base64
        import json

        def seg(obj: dict[str, Any]) -> str:
            raw = json.dumps(obj).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return f"{seg({'alg': 'none'})}.{seg(claims)}."
    head, body, sig = id_token.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return f"{head}.{body}.{flipped}"


@pytest.mark.parametrize("how", ["foreign_key", "alg_none", "bad_signature"])
def test_az32_badly_signed_id_token_hint(op, client, user, how):
    first = log_in(op.url, client, user)
    hint = _forged(first.tokens["id_token"], how)
    params = auth_params(client, _challenge(), prompt="none", id_token_hint=hint)
    resp = send_authorize(op.url, params, http=first.browser.http)
    assert_error_redirect(resp, RP, op.url, "invalid_request", params["state"])


@pytest.mark.parametrize(
    "extra",
    [
        {"display": "page"},
        {"display": "popup"},
        {"ui_locales": "se"},
        {"claims_locales": "se"},
        {"login_hint": "someone@example.test"},
        {"acr_values": "1 2"},
    ],
    ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()),
)
def test_az33_optional_parameters_accepted(op, client, user, extra):
    result, tokens = code_flow(op.url, client, Browser(op.url), user, **extra)
    assert result.code and tokens is not None and "id_token" in tokens


def test_az33_login_hint_prefills_login_form(op, client):
    hint = "someone@example.test"
    result = Browser(op.url).authorize(auth_params(client, _challenge(), login_hint=hint))
    assert result.login_shown
    assert re.search(r'name="email"[^>]*value="someone@example\.test"', result.page)


# --- AZ-36 .. AZ-46 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "error"),
    [
        ("request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.", "invalid_request_object"),
        ("request_uri", "https://rp.test/request.jwt", "request_uri_not_supported"),
    ],
)
def test_az36_unsigned_request_objects_and_foreign_request_uris(op, client, param, value, error):
    """RFC 9101: a request object must be signed by the client's key (alg none never is);
    request_uri only from PAR (RFC 9126), never fetched. tests/conformance/test_jar_par.py."""
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert doc[f"{param}_parameter_supported"] is (param == "request")
    params = auth_params(client, _challenge(), **{param: value})
    _redirected_error(op, client, params, error)


@pytest.mark.skip(
    reason="AZ-39 offline_access only after consent: not built (no consent screen; idp issues "
    "a refresh token for offline_access to its first-party applications)"
)
def test_az39_offline_access_requires_consent():
    raise AssertionError("unreachable")


def test_az40_no_307_after_login_post(op, client, user):
    http = requests.Session()
    params = auth_params(client, _challenge())
    page = http.get(f"{op.url}/authorize", params=params, allow_redirects=False)
    assert page.status_code == 200  # the login form, shown by /authorize itself
    login_url = op.url + login_form_action(page.text)
    fields = hidden_inputs(page.text)
    fields.update(email=user.email, password=user.password)
    resp = http.post(login_url, data=fields, allow_redirects=False)
    statuses = [resp.status_code]
    while resp.status_code in (301, 302, 303, 307, 308):
        target = resp.headers["Location"]
        if not target.startswith("/") and not target.startswith(op.url + "/"):
            break
        resp = http.get(
            target if target.startswith("http") else op.url + target, allow_redirects=False
        )
        statuses.append(resp.status_code)
    assert all(s in REDIRECT_STATUSES for s in statuses), statuses
    assert resp.headers["Location"].startswith(RP + "?")
    assert "code" in query_dict(resp.headers["Location"])


def test_az41_no_cors_on_authorization_endpoint(op, client):
    origin = {"Origin": "https://evil.test"}
    params = auth_params(client, _challenge())
    for resp in (
        send_authorize(op.url, params, headers=origin),
        send_authorize(op.url, params, method="POST", headers=origin),
        requests.options(
            f"{op.url}/authorize",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        ),
    ):
        cors = {k for k in resp.headers if k.lower().startswith("access-control-")}
        assert not cors, cors


def _op_pages(op, client, user) -> dict[str, requests.Response]:
    """Every kind of HTML page the OP shows during authorization and logout."""
    http = requests.Session()
    pages = {}
    resp = http.get(f"{op.url}/authorize", params=auth_params(client, _challenge()))
    pages["login"] = resp
    fields = hidden_inputs(resp.text)
    fields.update(email=user.email, password="wrong-password")
    login_url = op.url + login_form_action(resp.text)
    pages["login_failed"] = http.post(login_url, data=fields, allow_redirects=False)
    pages["authorize_error"] = send_authorize(
        op.url, auth_params(client, _challenge(), redirect_uri=EVIL)
    )
    pages["expired_interaction"] = requests.get(f"{op.url}/interaction/nope/login")
    pages["logout_confirm"] = requests.get(f"{op.url}/oidc/logout")
    return pages


def test_az42_clickjacking_defence_on_every_page(op, client, user):
    pages = _op_pages(op, client, user)
    assert pages["login"].status_code == 200 and pages["login_failed"].status_code == 401
    for name, resp in pages.items():
        assert resp.headers["Content-Type"].startswith("text/html"), name
        xfo = resp.headers.get("X-Frame-Options", "").upper()
        csp = resp.headers.get("Content-Security-Policy", "")
        frame_ancestors = re.search(r"frame-ancestors\s+([^;]*)", csp)
        assert xfo == "DENY" or (frame_ancestors and frame_ancestors.group(1).strip() == "'none'")
        if xfo:
            assert xfo in ("DENY", "SAMEORIGIN"), name
        if frame_ancestors:
            assert frame_ancestors.group(1).strip() in ("'none'", "'self'"), name


def test_az43_referrer_policy_and_no_third_party_resources(op, client, user):
    for name, resp in _op_pages(op, client, user).items():
        assert resp.headers.get("Referrer-Policy") == "no-referrer", name
        for url in re.findall(r'(?:src|href|action)\s*=\s*"([^"]*)"', resp.text):
            parts = urlsplit(url)
            if parts.netloc or url.startswith("//"):
                assert url.startswith(op.url + "/"), (name, url)


@pytest.mark.parametrize(
    "extra",
    [
        {"response_type": "token"},
        {"response_type": None},
        {"code_challenge": None},
        {"code_challenge_method": "plain"},
        {"prompt": "none"},
        {"prompt": "none login"},
        {"response_mode": "bogus"},
        {"request": "e30.e30."},
        {"request_uri": "https://rp.test/r"},
        {"max_age": "soon"},
        {"scope": "openid admin"},
        {"id_token_hint": "not-a-jwt"},
    ],
    ids=lambda e: repr(e),
)
def test_az44_no_redirect_to_unvalidated_uri_on_error(op, client, extra):
    params = auth_params(client, _challenge(), redirect_uri=EVIL, **extra)
    resp = send_authorize(op.url, params)
    assert_error_page(resp)
    assert "evil.test" not in resp.headers.get("Location", "")


@pytest.mark.parametrize("app_type", ["regular_web", "spa", "native"])
def test_az46_http_redirect_uris_refused_at_registration(op, app_type):
    with pytest.raises(ValidationError):
        op.factory.gen_client(app_type, redirect_uris=["http://rp.test/cb"])
    # Loopback http is the one exception.
    client = op.factory.gen_client(app_type, redirect_uris=["http://127.0.0.1/cb"])
    assert client.redirect_uri == "http://127.0.0.1/cb"


# --- ISS-01 ------------------------------------------------------------------------------


def test_iss01_iss_parameter_advertised_and_sent(op, client, user):
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert doc["authorization_response_iss_parameter_supported"] is True
    result, _ = code_flow(op.url, client, Browser(op.url), user)
    assert query_dict(result.location)["iss"] == doc["issuer"]
    params = auth_params(client, _challenge(), prompt="none")
    got = assert_error_redirect(
        send_authorize(op.url, params), RP, op.url, "login_required", params["state"]
    )
    assert got["iss"] == doc["issuer"]


# --- SECURITY.md §2.1 --------------------------------------------------------------------


def test_s_az_01_unregistered_redirect(op, client):
    resp = send_authorize(
        op.url, auth_params(client, _challenge(), redirect_uri="https://evil.test/")
    )
    assert_error_page(resp)


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.test/cb.evil.test",
        "https://rp.test/cb/../evil",
        "https://rp.test/cb%2F..%2Fevil",
        "https://rp.test/cb/",
        "https://RP.test/cb",
        "https://rp.test:443/cb",
        "https://rp.test/cb?x=1",
        "https://rp.test/cb#x",
        "https://rp.test./cb",
        "HTTPS://rp.test/cb",
        " https://rp.test/cb",
        "https://rp.test/cb%00",
    ],
)
def test_s_az_02_prefix_suffix_path_tricks(op, client, uri):
    assert_error_page(send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=uri)))


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.test@evil.test/cb",
        "https://a@b@evil.test/cb",
        "https://rp.test\\@evil.test/cb",
        "https://evil.test\\@rp.test/cb",
        "https://evil.test\\rp.test/cb",
        "https://rp.test%40evil.test/cb",
        "//evil.test/cb",
    ],
)
def test_s_az_03_userinfo_and_at_parsing(op, client, uri):
    assert_error_page(send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=uri)))


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.test/cb/..;/evil",
        "https://rp.test/cb/%2e%2e/evil",
        "https://rp.test/cb/..%2fevil",
        "https://rp.test/cb;/../evil",
    ],
)
def test_s_az_04_encoded_traversal(op, client, uri):
    assert_error_page(send_authorize(op.url, auth_params(client, _challenge(), redirect_uri=uri)))


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://localhost/cb", "http://localhost.evil.test/cb"),
        ("http://localhost/cb", "https://localhost/cb"),
        ("http://localhost/cb", "http://localhost@evil.test/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1.evil.test/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:8080@evil.test/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:abc/cb"),
        ("http://127.0.0.1/cb", "ftp://127.0.0.1/cb"),
        ("http://[::1]/cb", "http://[::1].evil.test/cb"),
    ],
)
def test_s_az_05_localhost_registration_abuse(op, registered, requested):
    client = op.factory.gen_client("native", redirect_uris=[registered])
    params = auth_params(client, _challenge(), redirect_uri=requested)
    assert_error_page(send_authorize(op.url, params))


@pytest.mark.parametrize("app_type", ["regular_web", "spa", "native"])
@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "DATA:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
    ],
)
def test_s_az_06_dangerous_schemes_refused_at_registration(op, app_type, field, uri):
    kwargs: dict[str, Any] = {field: [uri]}
    with pytest.raises(ValidationError):
        op.factory.gen_client(app_type, **kwargs)


def test_s_az_07_error_paths_do_not_redirect(op, client):
    for uri in (EVIL, RP):
        params = auth_params(client, _challenge(), client_id="unknown-client", redirect_uri=uri)
        assert_error_page(send_authorize(op.url, params))
    params = auth_params(client, _challenge(), response_mode="bogus")
    assert_error_page(send_authorize(op.url, params))
    params = auth_params(client, _challenge(), response_mode="bogus", redirect_uri=EVIL)
    assert_error_page(send_authorize(op.url, params))


@pytest.mark.parametrize("response_type", ["token", "id_token token", "code id_token"])
def test_s_az_08_implicit_and_hybrid(op, client, response_type):
    params = auth_params(client, _challenge(), response_type=response_type)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, RP, op.url, "unsupported_response_type", params["state"])
    assert "token=" not in resp.headers["Location"]


def test_s_az_09_mix_up_defence(op, client, user):
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert doc["authorization_response_iss_parameter_supported"] is True
    for _ in range(2):
        result, _ = code_flow(op.url, client, Browser(op.url), user)
        assert query_dict(result.location)["iss"] == doc["issuer"]


def test_s_az_12_prompt_none_without_session(op, client):
    params = auth_params(client, _challenge(), prompt="none")
    got = assert_error_redirect(
        send_authorize(op.url, params), RP, op.url, "login_required", params["state"]
    )
    assert got["iss"] == op.url


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_s_az_13_oversized_scope_rejected(op, client, method):
    params = auth_params(client, _challenge(), scope="openid " + "x" * 1_000_000)
    resp = send_authorize(op.url, params, method=method)
    # 414 (URI too long) / 413 (body too large) are the HTTP-level forms of invalid_request.
    assert resp.status_code in (400, 413, 414), resp.status_code
    assert "Location" not in resp.headers
    # The server is still healthy afterwards.
    assert requests.get(f"{op.url}/.well-known/openid-configuration").status_code == 200


def test_s_az_13_duplicated_client_id(op, client):
    pairs = [*auth_params(client, _challenge()).items(), ("client_id", client.client_id)]
    assert_error_page(send_authorize(op.url, pairs))
    other = op.factory.gen_client()
    pairs = [*auth_params(client, _challenge()).items(), ("client_id", other.client_id)]
    assert_error_page(send_authorize(op.url, pairs))


# --- SECURITY.md §2.2 (authorization side) -----------------------------------------------


@pytest.mark.parametrize("app_type", ["spa", "native", "regular_web"])
def test_s_pk_01_no_code_challenge(op, app_type):
    redirect = "http://127.0.0.1/cb" if app_type == "native" else RP
    client = op.factory.gen_client(app_type, redirect_uris=[redirect])
    params = auth_params(client, None, code_challenge_method=None)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, redirect, op.url, "invalid_request", params["state"])
    # Even with a method but no challenge.
    params = auth_params(client, None)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, redirect, op.url, "invalid_request", params["state"])


@pytest.mark.parametrize("app_type", ["spa", "regular_web"])
def test_s_pk_02_plain_method(op, app_type):
    client = op.factory.gen_client(app_type)
    verifier = secrets.token_urlsafe(48)
    params = auth_params(client, verifier, code_challenge_method="plain")
    _redirected_error(op, client, params, "invalid_request")


@pytest.mark.parametrize(
    "challenge",
    ["a", "a" * 42, "a" * 129, "+" * 43, "/" * 43, "=" * 43, "a" * 42 + "\u00e9"],
    ids=["len1", "len42", "len129", "plus", "slash", "equals", "non-ascii"],
)
def test_s_pk_06_challenge_abnf(op, client, challenge):
    params = auth_params(client, challenge)
    _redirected_error(op, client, params, "invalid_request")


def test_s_pk_06_verifier_shaped_challenge_accepted(op, client, user):
    # The unreserved punctuation -._~ is legal anywhere in a 43-128 character challenge.
    challenge = "-._~" + "a" * 39
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    assert result.code
