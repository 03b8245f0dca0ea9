"""The standard profile over the protocol (OIDC Core §5.1, §5.4): userinfo releases exactly the
claims of the granted scopes, the ID token none of them (idp always issues an access token for
the userinfo endpoint), absent claims are omitted, discovery lists the scopes and the claims,
and a post-login action sees them in ``event.user``. A real server, real HTTP, real logins."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from idp.actions import events, triggers
from idp.actions.engine import Link, run_test
from idp.extensions import db, services
from idp.identity import service as identity
from idp.identity.models import User
from tests.conformance._token_helpers import code_tokens, userinfo, verify_jwt
from tests.helpers import Browser, auth_params, jwt_parts, login_and_redeem, pkce

ADDRESS = {"street_address": "1 Rue de Rivoli\nBât. B", "locality": "Paris", "country": "FR"}
FULL = {
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "middle_name": "Augusta",
    "nickname": "ada",
    "preferred_username": "ada.l",
    "profile": "https://example.test/ada",
    "picture": "https://example.test/ada.png",
    "website": "https://ada.example.test/",
    "gender": "female",
    "birthdate": "1815-12-10",
    "zoneinfo": "Europe/London",
    "locale": "en-GB",
    "phone_number": "+442071234567",
    "phone_number_verified": True,
    "address": ADDRESS,
}
PROFILE = {
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
    "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
}  # fmt: skip
PHONE = {"phone_number", "phone_number_verified"}
EMAIL = {"email", "email_verified"}


def set_profile(op: Any, user_id: str, changes: dict[str, Any]) -> None:
    with op.app.app_context():
        identity.update_profile(db.session, user_id, changes)
        db.session.commit()


def stored_updated_at(op: Any, user_id: str) -> int:
    with op.app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return user.updated_at


@pytest.fixture(scope="module")
def actors(live: Any) -> dict[str, Any]:
    f = live.factory
    full, bare = f.gen_user(), f.gen_user()
    set_profile(live, full.user_id, FULL)
    return {"web": f.gen_client(), "full": full, "bare": bare}


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("openid", set()),
        ("openid profile", PROFILE),
        ("openid email", EMAIL),
        ("openid phone", PHONE),
        ("openid address", {"address"}),
        ("openid profile email", PROFILE | EMAIL),
        ("openid profile phone address email", PROFILE | PHONE | EMAIL | {"address"}),
    ],
)
def test_userinfo_releases_exactly_the_granted_scopes_claims(op, actors, scope, expected):
    tokens = code_tokens(op, actors["web"], actors["full"], scope=scope)
    info = userinfo(op, tokens["access_token"]).json()
    assert set(info) == {"sub"} | expected, info
    for claim in expected - {"updated_at", "email", "email_verified"}:
        assert info[claim] == FULL[claim], claim
    # OIDC Core §5.4 as idp applies it: with an access token for userinfo, the ID token
    # carries none of the scope claims.
    id_claims = verify_jwt(op, tokens["id_token"]).claims
    assert not (PROFILE | PHONE | EMAIL | {"address"}) & set(id_claims), id_claims


def test_claim_types(op, actors):
    tokens = code_tokens(op, actors["web"], actors["full"], scope="openid profile phone address")
    info = userinfo(op, tokens["access_token"]).json()
    assert info["address"] == ADDRESS and isinstance(info["address"], dict)  # §5.1.1 object
    assert info["phone_number_verified"] is True
    assert type(info["updated_at"]) is int


def test_absent_claims_are_omitted_never_null(op, actors):
    tokens = code_tokens(op, actors["web"], actors["bare"], scope="openid profile phone address")
    info = userinfo(op, tokens["access_token"]).json()
    assert set(info) == {"sub", "updated_at"}, info
    assert None not in info.values()


def test_a_claim_removed_is_no_longer_released(op, actors):
    user = op.factory.gen_user()
    set_profile(op, user.user_id, {"nickname": "nick", "phone_number": "+33612345678"})
    set_profile(op, user.user_id, {"nickname": "", "phone_number": None})
    tokens = code_tokens(op, actors["web"], user, scope="openid profile phone")
    assert set(userinfo(op, tokens["access_token"]).json()) == {"sub", "updated_at"}


def test_updated_at_moves_on_a_change_only(op, actors, clock):
    user = op.factory.gen_user()
    first = stored_updated_at(op, user.user_id)
    clock.advance(100)
    set_profile(op, user.user_id, {"given_name": "Grace"})
    changed = stored_updated_at(op, user.user_id)
    assert changed >= first + 100
    clock.advance(100)
    set_profile(op, user.user_id, {"given_name": "Grace"})  # the same value: no change
    code_tokens(op, actors["web"], user, scope="openid profile")  # a login changes no claim
    assert stored_updated_at(op, user.user_id) == changed
    tokens = code_tokens(op, actors["web"], user, scope="openid profile")
    assert userinfo(op, tokens["access_token"]).json()["updated_at"] == changed


def test_discovery_lists_the_scopes_and_claims(op):
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert {"openid", "profile", "email", "phone", "address"} <= set(doc["scopes_supported"])
    assert PROFILE | PHONE | EMAIL | {"address", "sub"} <= set(doc["claims_supported"])
    assert len(doc["claims_supported"]) == len(set(doc["claims_supported"]))


def test_phone_and_address_scopes_are_granted_not_dropped(op, actors):
    tokens = code_tokens(op, actors["web"], actors["full"], scope="openid phone address")
    assert set(tokens["scope"].split()) == {"openid", "phone", "address"}
    assert set(jwt_parts(tokens["access_token"])[1]["scope"].split()) >= {"phone", "address"}


def test_event_user_carries_the_standard_claims_in_a_real_login(op, actors):
    op.factory.clear_actions()
    op.factory.gen_action(
        "profile-echo",
        "post-login",
        "def on_execute_post_login(event, api):\n"
        "    api.id_token.set_custom_claim('https://x/user', event.user)\n",
    )
    try:
        tokens = login_and_redeem(op.url, actors["web"], actors["full"])
        bare = login_and_redeem(op.url, actors["web"], actors["bare"])
    finally:
        op.factory.clear_actions()
    seen = jwt_parts(tokens["id_token"])[1]["https://x/user"]
    for claim, value in FULL.items():
        assert seen[claim] == value, claim
    assert seen["updated_at"].endswith("Z")  # ISO 8601, like created_at
    bare_seen = jwt_parts(bare["id_token"])[1]["https://x/user"]
    assert not (set(FULL) - {"name"}) & set(bare_seen), bare_seen


def test_event_user_in_the_test_runner(op, actors):
    """The test runner, given the event idp builds for this user, hands the action the claims."""
    code = (
        "def on_execute_post_login(event, api):\n"
        "    api.id_token.set_custom_claim('where', [event.user.address.locality,"
        " event.user.phone_number, event.user.zoneinfo])\n"
    )
    link = Link(
        action_id="act_profile", name="profile", version=0, code=code, deps=None,
        allowed_hosts=(), configuration={}, timeout_ms=5000, allowed_to_fail=False, secrets={},
    )  # fmt: skip
    with op.app.app_context():
        user = db.session.get(User, actors["full"].user_id)
        assert user is not None
        event = {**triggers.get("post-login").sample, "user": events.user_event(user)}
        result = run_test(services().actions, "post-login", link, event)
    assert result["error"] is None, result
    assert result["effects"]["id_token_claims"] == {
        "where": ["Paris", "+442071234567", "Europe/London"]
    }


def test_a_third_party_app_asks_consent_for_phone_and_address_in_words(op, actors):
    third = op.factory.gen_client(first_party=False)
    _verifier, challenge = pkce()
    params = auth_params(third, challenge, scope="openid phone address")
    result = Browser(op.url).authorize(params, actors["bare"])
    assert result.consent_shown and not result.code
    assert "See your phone number" in result.page and "See your postal address" in result.page
