"""The ``oidc`` strategy against a real OpenID provider (npm oidc-provider, see upstream.py):
discovery, the code flow with PKCE and nonce, each client authentication, the ID token,
userinfo, form_post, key rotation. Attacks are in test_upstream_attacks.py."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.connections import strategies
from idp.connections import upstream as idp_upstream
from idp.connections.upstream import UpstreamError, discovery
from idp.core import clock
from tests.connections.rogue_upstream import rogue_upstream
from tests.connections.upstream import REDIRECT_URI, SETTINGS, running_upstream, sign_in


def _header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _begin(options: dict, strategy: str = "oidc", login_hint: str | None = None):
    return idp_upstream.begin(
        strategy, strategies.validate_options(strategy, options), redirect_uri=REDIRECT_URI,
        state="the-state", login_hint=login_hint, settings=SETTINGS,
    )  # fmt: skip


def test_verified_login_gives_the_upstream_profile(oidc_upstream):
    profile = sign_in(oidc_upstream, "oidc", oidc_upstream.options(), "verified-alice@example.com")

    assert profile.user_id == "verified-alice@example.com"
    assert profile.email == "verified-alice@example.com"
    assert profile.email_verified is True
    assert profile.claims["name"] == "Alice Upstream"
    assert profile.claims["given_name"] == "Alice"
    assert profile.claims["family_name"] == "Upstream"
    assert profile.claims["nickname"] == "alice"
    assert "email" not in profile.claims and "sub" not in profile.claims
    assert profile.raw["iss"] == oidc_upstream.issuer and profile.raw["sub"] == profile.user_id
    assert not {"nonce", "at_hash", "aud", "exp", "iat", "auth_time"} & set(profile.raw)
    assert set(profile.tokens) >= {"access_token", "id_token", "expires_at"}


def test_unverified_email_is_not_verified(oidc_upstream):
    profile = sign_in(oidc_upstream, "oidc", oidc_upstream.options(), "bob@example.com")
    assert profile.email == "bob@example.com"
    assert profile.email_verified is False


def test_userinfo_is_merged_unless_turned_off(oidc_upstream):
    # The upstream releases locale and picture at userinfo only, not in the ID token.
    merged = sign_in(oidc_upstream, "oidc", oidc_upstream.options(), "carol")
    assert merged.claims["locale"] == "fr-FR"
    assert merged.claims["picture"] == "https://pictures.upstream.test/carol.png"

    alone = sign_in(oidc_upstream, "oidc", oidc_upstream.options(userinfo=False), "carol")
    assert "locale" not in alone.claims and "picture" not in alone.claims
    assert alone.claims["given_name"] == "Carol"
    assert alone.email == "carol@upstream.test"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_each_client_authentication(oidc_upstream, method):
    # The basic client's secret holds ":", " ", "+", "%", "/", "&", "=": RFC 6749 §2.3.1's
    # form-encoding is what lets the upstream read it back.
    profile = sign_in(oidc_upstream, "oidc", oidc_upstream.options(method), "dave@example.com")
    assert profile.user_id == "dave@example.com"


def test_wrong_client_secret_is_a_clean_error_without_the_secret(oidc_upstream):
    secret = "wrong-secret-that-must-not-leak"
    with pytest.raises(UpstreamError) as caught:
        sign_in(oidc_upstream, "oidc", oidc_upstream.options(client_secret=secret), "erin")
    error = caught.value
    assert error.reason == "bad_token_response"
    assert "invalid_client" in error.detail
    assert secret not in f"{error} {error.description} {error.detail}"


def test_authorization_request_parameters(oidc_upstream):
    options = oidc_upstream.options(
        domain_hint="example.com",
        authorization_params={"prompt": "select_account", "state": "evil", "nonce": "evil"},
    )
    started = _begin(options, login_hint="frank@example.com")
    url = urlsplit(started.url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}

    assert f"{url.scheme}://{url.netloc}{url.path}" == oidc_upstream.url("/auth")
    assert query["response_type"] == "code" and query["client_id"] == "idp-basic"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"].split() == ["openid", "profile", "email"]
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] == "the-state"  # the operator's extras cannot replace idp's own
    assert query["nonce"] == started.kept["nonce"] != "evil"
    assert query["login_hint"] == "frank@example.com"
    assert query["domain_hint"] == query["hd"] == "example.com"
    assert query["prompt"] == "select_account"
    assert "response_mode" not in query
    assert set(started.kept) == {"protocol", "issuer", "code_verifier", "nonce"}
    json.dumps(started.kept)  # stored server-side as JSON


def test_form_post_response_mode(oidc_upstream):
    options = strategies.validate_options("oidc", oidc_upstream.options(response_mode="form_post"))
    started = _begin(options)
    assert parse_qs(urlsplit(started.url).query)["response_mode"] == ["form_post"]

    params = oidc_upstream.login(started.url, "verified-gina@example.com")  # a POSTed form
    profile = idp_upstream.finish(
        "oidc", options, redirect_uri=REDIRECT_URI, params=params, kept=started.kept,
        settings=SETTINGS,
    )  # fmt: skip
    assert profile.user_id == "verified-gina@example.com" and profile.email_verified is True


def test_error_from_the_upstream_is_a_safe_upstream_error(oidc_upstream):
    started = _begin(oidc_upstream.options())
    params = {"error": "access_denied", "error_description": "<script>x</script>",
              "state": "the-state", "iss": oidc_upstream.issuer}  # fmt: skip
    with pytest.raises(UpstreamError) as caught:
        idp_upstream.finish(
            "oidc", oidc_upstream.options(), redirect_uri=REDIRECT_URI, params=params,
            kept=started.kept, settings=SETTINGS,
        )  # fmt: skip
    assert caught.value.reason == "upstream_error"
    assert "access_denied" in caught.value.description
    assert "<script>" not in caught.value.description


def test_a_callback_without_code_is_refused(oidc_upstream):
    started = _begin(oidc_upstream.options())
    with pytest.raises(UpstreamError) as caught:
        idp_upstream.finish(
            "oidc", oidc_upstream.options(), redirect_uri=REDIRECT_URI,
            params={"state": "the-state", "iss": oidc_upstream.issuer}, kept=started.kept,
            settings=SETTINGS,
        )  # fmt: skip
    assert caught.value.reason == "missing_code"


def test_a_code_redeems_once(oidc_upstream):
    options = strategies.validate_options("oidc", oidc_upstream.options())
    started = _begin(options)
    params = oidc_upstream.login(started.url, "henry")
    finish = dict(redirect_uri=REDIRECT_URI, params=params, kept=started.kept, settings=SETTINGS)
    assert idp_upstream.finish("oidc", options, **finish).user_id == "henry"
    with pytest.raises(UpstreamError) as caught:
        idp_upstream.finish("oidc", options, **finish)
    assert caught.value.reason == "bad_token_response"


def test_key_rotation_mid_test_fetches_the_new_key():
    with running_upstream() as upstream:
        first = sign_in(upstream, "oidc", upstream.options(), "ivan")
        old_kid = _header(first.tokens["id_token"])["kid"]

        new_kid = upstream.rotate_keys()  # the JWKS now holds only the new key

        second = sign_in(upstream, "oidc", upstream.options(), "ivan")
        assert _header(second.tokens["id_token"])["kid"] == new_kid != old_kid
        assert second.user_id == "ivan"
        meta = discovery.metadata(upstream.issuer, SETTINGS)
        cached = discovery.keys(meta, SETTINGS)
        assert [k["kid"] for k in cached] == [new_kid]


def test_discovery_must_name_the_configured_issuer(oidc_upstream):
    # Same server, issuer spelled with a trailing slash: its document says otherwise.
    with pytest.raises(UpstreamError) as caught:
        _begin(oidc_upstream.options(issuer=oidc_upstream.issuer + "/"))
    assert caught.value.reason == "issuer_mismatch"


def test_a_loopback_upstream_is_refused_without_the_operator_allowing_it(oidc_upstream):
    discovery.clear()
    options = strategies.validate_options("oidc", oidc_upstream.options())
    with pytest.raises(UpstreamError) as caught:
        idp_upstream.begin(
            "oidc", options, redirect_uri=REDIRECT_URI, state="s", login_hint=None,
            settings=idp_upstream.Settings(),
        )  # fmt: skip
    assert caught.value.reason == "unreachable"
    assert "non-public" in caught.value.detail


def test_discovery_and_jwks_are_cached_for_their_ttl():
    with rogue_upstream() as rogue:
        try:
            for _ in range(2):
                options = strategies.validate_options("oidc", rogue.options())
                started = _begin(options)
                rogue.id_token = rogue.sign(nonce=started.kept["nonce"])
                idp_upstream.finish(
                    "oidc", options, redirect_uri=REDIRECT_URI,
                    params={"code": "c", "iss": rogue.issuer}, kept=started.kept,
                    settings=SETTINGS,
                )  # fmt: skip
            assert rogue.hits["/.well-known/openid-configuration"] == 1
            assert rogue.hits["/jwks"] == 1
            clock.advance(discovery.TTL)
            _begin(strategies.validate_options("oidc", rogue.options()))
            assert rogue.hits["/.well-known/openid-configuration"] == 2
        finally:
            clock.reset()
