"""Attacks on the upstream leg of a social/enterprise login, each its own test, at the
begin/finish level: mix-up (RFC 9207), forged ID tokens (unknown key, ``alg: none``, HS256
keyed with the public key, expired, another audience, nonce replayed), a slow upstream and a
huge answer. Forged tokens come from rogue_upstream.py, a real HTTP upstream on loopback; the
mix-up tests use the real oidc-provider upstream."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from idp.connections import strategies
from idp.connections import upstream as idp_upstream
from idp.connections.upstream import Settings, UpstreamError, discovery
from idp.core import clock
from tests.connections.rogue_upstream import CLIENT_SECRET, Rogue, rogue_upstream
from tests.connections.upstream import REDIRECT_URI, SETTINGS
from tests.ports import free_port


@pytest.fixture
def rogue() -> Iterator[Rogue]:
    with rogue_upstream() as upstream:
        yield upstream
    clock.reset()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _begin(upstream: Any, options: dict[str, Any], settings: Settings = SETTINGS):
    checked = strategies.validate_options("oidc", options)
    started = idp_upstream.begin(
        "oidc", checked, redirect_uri=REDIRECT_URI, state="s", login_hint=None, settings=settings
    )
    return checked, started


def _finish(options, started, params, settings: Settings = SETTINGS):
    return idp_upstream.finish(
        "oidc", options, redirect_uri=REDIRECT_URI, params=params, kept=started.kept,
        settings=settings,
    )  # fmt: skip


def _refused(rogue: Rogue, forge, *, settings: Settings = SETTINGS, **options) -> UpstreamError:
    """Begin a login at ``rogue``, have its token endpoint hand out ``forge(nonce)``, finish:
    the error idp raises."""
    checked, started = _begin(rogue, rogue.options(**options))
    rogue.id_token = forge(started.kept["nonce"])
    with pytest.raises(UpstreamError) as caught:
        _finish(checked, started, {"code": "c", "state": "s", "iss": rogue.issuer}, settings)
    return caught.value


# -- mix-up (RFC 9207) against the real upstream ----------------------------------------------


def test_callback_iss_from_another_provider_is_refused_before_the_code_is_spent(oidc_upstream):
    options, started = _begin(oidc_upstream, oidc_upstream.options())
    params = oidc_upstream.login(started.url, "verified-alice@example.com")
    swapped = {**params, "iss": "https://attacker.example"}
    with pytest.raises(UpstreamError) as caught:
        _finish(options, started, swapped)
    assert caught.value.reason == "iss_mismatch"
    # The refusal came before redemption: the genuine callback still works.
    assert _finish(options, started, params).user_id == "verified-alice@example.com"


def test_callback_without_iss_is_refused_when_the_provider_announces_it(oidc_upstream):
    options, started = _begin(oidc_upstream, oidc_upstream.options())
    params = oidc_upstream.login(started.url, "bob")
    del params["iss"]
    with pytest.raises(UpstreamError) as caught:
        _finish(options, started, params)
    assert caught.value.reason == "iss_missing"


def test_callback_without_iss_passes_when_the_provider_does_not_announce_it(rogue):
    rogue.metadata["authorization_response_iss_parameter_supported"] = False
    options, started = _begin(rogue, rogue.options())
    rogue.id_token = rogue.sign(nonce=started.kept["nonce"])
    assert _finish(options, started, {"code": "c", "state": "s"}).user_id == "rogue-user-1"


def test_an_error_answer_with_a_foreign_iss_is_a_mix_up_not_an_error(rogue):
    options, started = _begin(rogue, rogue.options())
    with pytest.raises(UpstreamError) as caught:
        _finish(options, started, {"error": "access_denied", "iss": "https://attacker.example"})
    assert caught.value.reason == "iss_mismatch"


def test_discovery_for_another_issuer_is_refused(rogue):
    rogue.metadata["issuer"] = "https://accounts.example.com"
    with pytest.raises(UpstreamError) as caught:
        _begin(rogue, rogue.options())
    assert caught.value.reason == "issuer_mismatch"


# -- forged ID tokens ----------------------------------------------------------------------


def test_id_token_signed_by_an_unknown_key(rogue):
    attacker = RSAKey.generate_key(2048)
    error = _refused(rogue, lambda nonce: rogue.sign(attacker, kid="attacker-1", nonce=nonce))
    assert error.reason == "bad_id_token" and "unknown kid" in error.detail
    # An unknown kid refetched the JWKS once (the upstream may have rotated) ...
    assert rogue.hits["/jwks"] == 2
    # ... but a second one right after does not make idp ask again (rate limit).
    _refused(rogue, lambda nonce: rogue.sign(attacker, kid="attacker-2", nonce=nonce))
    assert rogue.hits["/jwks"] == 2
    clock.advance(discovery.MIN_REFETCH)
    _refused(rogue, lambda nonce: rogue.sign(attacker, kid="attacker-3", nonce=nonce))
    assert rogue.hits["/jwks"] == 3


def test_id_token_signed_by_another_key_under_the_published_kid(rogue):
    attacker = RSAKey.generate_key(2048)
    error = _refused(rogue, lambda nonce: rogue.sign(attacker, nonce=nonce))
    assert error.reason == "bad_id_token" and "bad signature" in error.detail


def test_id_token_with_alg_none(rogue):
    # Even announced by the upstream, "none" is refused, before any key is looked at.
    rogue.metadata["id_token_signing_alg_values_supported"] = ["none", "HS256", "RS256"]

    def unsigned(nonce: str) -> str:
        header = _b64(json.dumps({"alg": "none", "kid": rogue.kid}).encode())
        return f"{header}.{_b64(json.dumps(rogue.claims(nonce=nonce)).encode())}."

    error = _refused(rogue, unsigned)
    assert error.reason == "bad_id_token" and "alg none is not allowed" in error.detail
    assert rogue.hits["/jwks"] == 0


def test_id_token_hs256_keyed_with_the_rsa_public_key(rogue):
    # The classic confusion: the public key (anyone can fetch it) used as an HMAC secret.
    rogue.metadata["id_token_signing_alg_values_supported"] = ["RS256", "HS256"]
    public_pem = RSAKey.import_key(rogue.jwks[0]).as_pem(private=False)
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")

    def forged(nonce: str) -> str:
        header = _b64(json.dumps({"alg": "HS256", "kid": rogue.kid, "typ": "JWT"}).encode())
        signing_input = f"{header}.{_b64(json.dumps(rogue.claims(nonce=nonce)).encode())}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"

    error = _refused(rogue, forged)
    assert error.reason == "bad_id_token" and "alg HS256 is not allowed" in error.detail


def test_id_token_with_an_alg_the_upstream_does_not_announce(rogue):
    rogue.metadata["id_token_signing_alg_values_supported"] = ["ES256"]
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce))
    assert error.reason == "bad_id_token" and "alg RS256 is not allowed" in error.detail


def test_expired_id_token(rogue):
    now = clock.now()
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce, iat=now - 7200, exp=now - 3600))
    assert error.reason == "bad_id_token" and "expired" in error.detail


def test_id_token_issued_in_the_future(rogue):
    now = clock.now()
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce, iat=now + 3600))
    assert error.reason == "bad_id_token" and "iat in the future" in error.detail


def test_id_token_for_another_audience(rogue):
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce, aud="another-client"))
    assert error.reason == "bad_id_token" and "aud" in error.detail


def test_id_token_for_several_audiences_needs_azp(rogue):
    several = ["another-client", "rogue-client"]
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce, aud=several))
    assert error.reason == "bad_id_token" and "azp" in error.detail
    error = _refused(rogue, lambda n: rogue.sign(nonce=n, aud=several, azp="another-client"))
    assert "azp" in error.detail


def test_id_token_from_another_issuer(rogue):
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce, iss="https://other.example"))
    assert error.reason == "bad_id_token" and "iss" in error.detail


def test_id_token_nonce_mismatch_and_missing(rogue):
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce + "x"))
    assert error.reason == "bad_id_token" and "nonce" in error.detail
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=None))
    assert "nonce" in error.detail


def test_id_token_replayed_into_another_login(rogue):
    options, first = _begin(rogue, rogue.options())
    rogue.id_token = rogue.sign(nonce=first.kept["nonce"])
    assert _finish(options, first, {"code": "c1", "iss": rogue.issuer}).user_id
    # The same, valid, token handed out again for a second login: its nonce is the first's.
    options, second = _begin(rogue, rogue.options())
    with pytest.raises(UpstreamError) as caught:
        _finish(options, second, {"code": "c2", "iss": rogue.issuer})
    assert caught.value.reason == "bad_id_token" and "nonce" in caught.value.detail


def test_id_token_without_sub(rogue):
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce, sub=None))
    assert error.reason == "bad_id_token" and "sub" in error.detail


def test_userinfo_for_another_subject(rogue):
    rogue.userinfo = {"sub": "someone-else", "email": "victim@example.com", "email_verified": True}
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce), userinfo=True)
    assert error.reason == "bad_userinfo"


def test_email_verified_only_when_explicit(rogue):
    for said, expected in ((True, True), ("true", True), ("false", False), (1, False),
                           ("yes", False), (None, False)):  # fmt: skip
        options, started = _begin(rogue, rogue.options())
        rogue.id_token = rogue.sign(nonce=started.kept["nonce"], email_verified=said)
        profile = _finish(options, started, {"code": "c", "iss": rogue.issuer})
        assert profile.email_verified is expected, said


# -- the transport: slow, huge, broken, unreachable ----------------------------------------


def test_a_slow_token_endpoint_times_out(rogue):
    rogue.delay["/token"] = 60.0  # released when the test ends
    error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce),
                     settings=Settings(allowed_networks=SETTINGS.allowed_networks, timeout=0.5))  # fmt: skip
    assert error.reason == "unreachable" and "timeout" in error.detail.lower()


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/token", "/jwks"])
def test_a_5_mb_answer_is_refused(rogue, path):
    rogue.payload[path] = b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    with pytest.raises(UpstreamError) as caught:
        options, started = _begin(rogue, rogue.options())
        rogue.id_token = rogue.sign(nonce=started.kept["nonce"])
        _finish(options, started, {"code": "c", "iss": rogue.issuer})
    assert caught.value.reason == "response_too_large"
    assert rogue.hits[path] == 1


def test_token_endpoint_errors_are_bad_token_response_without_secrets(rogue):
    for answer in ((500, "text/html", b"<h1>oops</h1>"),
                   (200, "text/plain", b"access_token=a"),
                   (400, "application/json", b'{"error": "invalid_grant"}'),
                   (200, "application/json", b'{"token_type": "bearer"}')):  # fmt: skip
        rogue.answers["/token"] = answer
        error = _refused(rogue, lambda nonce: rogue.sign(nonce=nonce))
        assert error.reason == "bad_token_response", answer
        assert CLIENT_SECRET not in f"{error} {error.description} {error.detail}"


def test_an_unreachable_upstream(rogue):
    closed = free_port()  # a port nobody listens on
    with pytest.raises(UpstreamError) as caught:
        _begin(rogue, rogue.options(issuer=f"http://127.0.0.1:{closed}"))
    assert caught.value.reason == "unreachable"


def test_private_key_never_appears_in_errors(rogue):
    key = RSAKey.generate_key(2048).as_pem(private=True).decode()
    rogue.answers["/token"] = (401, "application/json", b'{"error": "invalid_client"}')
    error = _refused(
        rogue, lambda nonce: rogue.sign(nonce=nonce),
        token_endpoint_auth_method="private_key_jwt", private_key=key, client_secret=None,
    )  # fmt: skip
    assert error.reason == "bad_token_response" and "invalid_client" in error.detail
    body = key.split("-----")[2].strip().splitlines()[1]
    assert body not in f"{error} {error.description} {error.detail}"
    sent = next(r for r in rogue.requests if r[1] == "/token")[3]
    assert sent["client_assertion_type"].endswith("jwt-bearer") and "client_secret" not in sent
