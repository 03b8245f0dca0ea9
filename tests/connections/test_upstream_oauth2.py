"""The ``oauth2`` strategy and the presets, against real upstreams: the GitHub preset and a
generic oauth2 connection against npm oidc-provider (upstream.py: its /token and the
GitHub-shaped /gh/user and /gh/user/emails), the Facebook and Apple presets against the small
programmable upstream (rogue_upstream.py), since oidc-provider cannot speak their dialects."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.connections import strategies
from idp.connections import upstream as idp_upstream
from idp.connections.upstream import UpstreamError
from tests.connections.rogue_upstream import CLIENT_ID, rogue_upstream
from tests.connections.upstream import REDIRECT_URI, SETTINGS, sign_in


def _github(upstream, **extra):
    """The github preset, its endpoints pointed at the local upstream (an operator's options
    override a preset's, URLs included)."""
    client = upstream.clients["client_secret_post"]
    return {
        "client_id": client.client_id, "client_secret": client.client_secret,
        "authorization_url": upstream.url("/auth"), "token_url": upstream.url("/token"),
        "profile_url": upstream.url("/gh/user"), "emails_url": upstream.url("/gh/user/emails"),
        **extra,
    }  # fmt: skip


def test_github_preset_keeps_the_verified_primary_email(oidc_upstream):
    profile = sign_in(oidc_upstream, "github", _github(oidc_upstream), "verified-kim@example.com")

    assert profile.user_id.isdigit()  # GitHub's numeric id, as a string
    assert profile.email == "verified-kim@example.com"
    assert profile.email_verified is True
    assert profile.claims == {
        "name": "Kim Upstream", "nickname": "kim",
        "picture": f"https://avatars.upstream.test/u/{profile.user_id}",
    }  # fmt: skip
    assert profile.raw["login"] == "kim" and profile.raw["id"] == int(profile.user_id)
    assert "access_token" in profile.tokens


def test_github_preset_without_a_verified_primary_has_no_email(oidc_upstream):
    # The list holds a verified *secondary* address: it is not the account's.
    profile = sign_in(oidc_upstream, "github", _github(oidc_upstream), "lee@example.com")
    assert profile.email is None
    assert profile.email_verified is False


def test_github_preset_begin_url(oidc_upstream):
    options = strategies.validate_options("github", _github(oidc_upstream))
    started = idp_upstream.begin(
        "github", options, redirect_uri=REDIRECT_URI, state="st", login_hint="x@example.com",
        settings=SETTINGS,
    )  # fmt: skip
    query = {k: v[0] for k, v in parse_qs(urlsplit(started.url).query).items()}
    assert query["scope"] == "read:user user:email"
    assert query["code_challenge_method"] == "S256" and query["state"] == "st"
    assert "nonce" not in query and "login_hint" not in query
    assert started.kept["protocol"] == "oauth2"


def test_generic_oauth2_with_a_mapping_and_basic_auth(oidc_upstream):
    # oidc-provider's userinfo as a plain OAuth profile endpoint, mapped by dotted paths.
    options = {
        "client_id": oidc_upstream.client_id, "client_secret": oidc_upstream.client_secret,
        "authorization_url": oidc_upstream.url("/auth"), "token_url": oidc_upstream.url("/token"),
        "profile_url": oidc_upstream.url("/me"), "scopes": ["openid", "email", "profile"],
        "map": {"user_id": "sub", "email": "email", "email_verified": "email_verified",
                "given_name": "given_name", "locale": "locale"},
    }  # fmt: skip
    profile = sign_in(oidc_upstream, "oauth2", options, "verified-max@example.com")
    assert profile.user_id == "verified-max@example.com"
    assert profile.email_verified is True
    assert profile.claims == {"given_name": "Max", "locale": "fr-FR"}

    unverified = sign_in(oidc_upstream, "oauth2", options, "nina@example.com")
    assert unverified.email == "nina@example.com" and unverified.email_verified is False


def test_a_profile_without_the_mapped_user_id_is_bad_profile(oidc_upstream):
    options = _github(oidc_upstream, map={"user_id": "account.uuid", "name": "name"})
    with pytest.raises(UpstreamError) as caught:
        sign_in(oidc_upstream, "github", options, "olga")
    assert caught.value.reason == "bad_profile"


def test_token_answer_is_asked_for_as_json():
    # GitHub answers form-encoded unless the request says Accept: application/json.
    with rogue_upstream() as rogue:

        def token(form, headers):
            if headers.get("accept") != "application/json":
                return 200, "application/x-www-form-urlencoded", b"access_token=a&scope=x"
            return 200, "application/json", b'{"access_token": "gho_1", "token_type": "bearer"}'

        rogue.token_answer = token
        rogue.profiles["/user"] = {"id": 7, "login": "pat"}
        options = strategies.validate_options("oauth2", {
            "client_id": CLIENT_ID, "client_secret": "s3",
            "authorization_url": rogue.url("/authorize"), "token_url": rogue.url("/token"),
            "profile_url": rogue.url("/user"), "map": {"user_id": "id", "nickname": "login"},
        })  # fmt: skip
        started = idp_upstream.begin(
            "oauth2", options, redirect_uri=REDIRECT_URI, state="s", login_hint=None,
            settings=SETTINGS,
        )  # fmt: skip
        profile = idp_upstream.finish(
            "oauth2", options, redirect_uri=REDIRECT_URI, params={"code": "c1", "state": "s"},
            kept=started.kept, settings=SETTINGS,
        )  # fmt: skip
        assert profile.user_id == "7" and profile.claims == {"nickname": "pat"}
        _, path, headers, _ = rogue.requests[-1]
        assert path == "/user"
        assert headers["authorization"] == "Bearer gho_1"  # the profile call (RFC 6750 §2.1)
        token_request = next(r for r in rogue.requests if r[1] == "/token")
        assert token_request[3]["code_verifier"] == started.kept["code_verifier"]
        assert token_request[3]["code"] == "c1"


def test_facebook_preset_maps_nested_paths():
    with rogue_upstream() as rogue:
        rogue.profiles["/me"] = {
            "id": "10158", "name": "Quinn Doe", "email": "quinn@example.com",
            "picture": {"data": {"url": "https://fb.test/q.jpg"}},
        }  # fmt: skip
        options = strategies.validate_options("facebook", {
            "client_id": CLIENT_ID, "client_secret": "fb-secret",
            "authorization_url": rogue.url("/dialog/oauth"), "token_url": rogue.url("/token"),
            "profile_url": rogue.url("/me?fields=id,name,email,picture"),
        })  # fmt: skip
        started = idp_upstream.begin(
            "facebook", options, redirect_uri=REDIRECT_URI, state="s", login_hint=None,
            settings=SETTINGS,
        )  # fmt: skip
        profile = idp_upstream.finish(
            "facebook", options, redirect_uri=REDIRECT_URI, params={"code": "c"},
            kept=started.kept, settings=SETTINGS,
        )  # fmt: skip
        assert profile.user_id == "10158"
        assert profile.claims == {"name": "Quinn Doe", "picture": "https://fb.test/q.jpg"}
        # Facebook says nothing about verification: the address is not taken as verified.
        assert profile.email == "quinn@example.com" and profile.email_verified is False
        token_request = next(r for r in rogue.requests if r[1] == "/token")
        assert token_request[3]["client_secret"] == "fb-secret"  # the preset's client_secret_post


def _p256() -> tuple[str, ECKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    return pem, ECKey.import_key(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
    ))  # fmt: skip


def test_apple_preset_form_post_signed_secret_and_first_login_name():
    pem, public = _p256()
    with rogue_upstream() as rogue:
        options = strategies.validate_options("apple", {
            "issuer": rogue.issuer, "client_id": CLIENT_ID, "team_id": "TEAM123456",
            "key_id": "KEY7654321", "private_key": pem,
        })  # fmt: skip
        started = idp_upstream.begin(
            "apple", options, redirect_uri=REDIRECT_URI, state="s", login_hint=None,
            settings=SETTINGS,
        )  # fmt: skip
        query = {k: v[0] for k, v in parse_qs(urlsplit(started.url).query).items()}
        assert query["response_mode"] == "form_post"
        assert query["scope"] == "openid name email"

        # Apple: email_verified as a string; the name only in the first login's `user` field.
        rogue.id_token = rogue.sign(nonce=started.kept["nonce"], email_verified="true",
                                    email="r@privaterelay.appleid.com")  # fmt: skip
        user = {"name": {"firstName": "Rae", "lastName": "Apple"}, "email": "evil@example.com"}
        params = {"code": "c", "state": "s", "iss": rogue.issuer, "user": json.dumps(user)}
        profile = idp_upstream.finish(
            "apple", options, redirect_uri=REDIRECT_URI, params=params, kept=started.kept,
            settings=SETTINGS,
        )  # fmt: skip
        assert profile.claims == {"given_name": "Rae", "family_name": "Apple", "name": "Rae Apple"}
        assert profile.email == "r@privaterelay.appleid.com"  # never the unsigned field's
        assert profile.email_verified is True
        assert rogue.hits["/userinfo"] == 0  # the preset turns userinfo off

        # The client secret the upstream received verifies with the team key's public half.
        token_request = next(r for r in rogue.requests if r[1] == "/token")
        secret = jwt.decode(token_request[3]["client_secret"], public, algorithms=["ES256"])
        assert secret.header["alg"] == "ES256" and secret.header["kid"] == "KEY7654321"
        claims = secret.claims
        assert claims["iss"] == "TEAM123456" and claims["sub"] == CLIENT_ID
        assert claims["aud"] == "https://appleid.apple.com"
        assert 0 < claims["exp"] - claims["iat"] <= 180 * 86400
        assert token_request[3]["client_id"] == CLIENT_ID  # client_secret_post
