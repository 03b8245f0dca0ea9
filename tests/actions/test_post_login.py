"""post-login: every api method, deny, fail-closed, metadata, refresh, redirect + /continue."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.extensions import db
from idp.identity.models import User
from tests.helpers import Browser, auth_params, jwt_parts, login_and_redeem, pkce, redeem

pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def action(body: str, extra: str = "") -> str:
    return "def on_execute_post_login(event, api):\n" + body + extra


def test_claims_scopes_and_event_fields(op: Any) -> None:
    audience = op.factory.gen_api(scopes=["read:things", "write:things", "admin"])
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action(
        "claims",
        "post-login",
        action(
            "    api.id_token.set_custom_claim('https://x/email', event.user.email)\n"
            "    api.id_token.set_custom_claim('https://x/methods', [m.name for m in event.authentication.methods])\n"
            "    api.access_token.set_custom_claim('https://x/client', event.client.client_id)\n"
            "    api.access_token.set_custom_claim('https://x/api', event.resource_server.identifier)\n"
            "    api.access_token.set_custom_claim('https://x/scopes', list(event.transaction.requested_scopes))\n"
            "    api.access_token.add_scope('write:things')\n"
            "    api.access_token.add_scope('not-defined-by-the-api')\n"
            "    api.access_token.remove_scope('read:things')\n"
        ),
    )
    tokens = login_and_redeem(op.url, client, user, scope="openid read:things", audience=audience)
    id_claims = jwt_parts(tokens["id_token"])[1]
    at_claims = jwt_parts(tokens["access_token"])[1]
    assert id_claims["https://x/email"] == user.email
    assert id_claims["https://x/methods"] == ["pwd"]
    assert "https://x/client" not in id_claims
    assert at_claims["https://x/client"] == client.client_id
    assert at_claims["https://x/api"] == audience
    assert at_claims["https://x/scopes"] == ["openid", "read:things"]
    assert at_claims["scope"].split() == ["openid", "write:things"]
    assert tokens["scope"].split() == ["openid", "write:things"]
    # protocol claims untouched
    assert id_claims["sub"] == user.user_id and at_claims["sub"] == user.user_id


def test_deny_sends_access_denied_to_the_app(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action("deny", "post-login", action("    api.access.deny('No entry today')\n"))
    _verifier, challenge = pkce()
    params = auth_params(client, challenge)
    result = Browser(op.url).authorize(params, user)
    assert result.location and result.location.startswith(client.redirect_uri)
    assert result.params["error"] == "access_denied"
    assert result.params["error_description"] == "No entry today"
    assert result.params["state"] == params["state"]
    assert "code" not in result.params


def test_an_exception_fails_closed_unless_allowed_to_fail(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action("boom", "post-login", action("    raise ValueError('oops')\n"))
    _verifier, challenge = pkce()
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    assert result.params["error"] == "access_denied"
    assert "oops" not in result.params.get("error_description", "")  # safe description only

    op.factory.clear_actions()
    op.factory.gen_action(
        "boom-ok", "post-login", action("    raise ValueError('oops')\n"), allowed_to_fail=True
    )
    op.factory.gen_action(
        "after", "post-login", action("    api.id_token.set_custom_claim('https://x/ran', True)\n")
    )
    tokens = login_and_redeem(op.url, client, user)
    assert jwt_parts(tokens["id_token"])[1]["https://x/ran"] is True


def test_metadata_is_written_to_the_user(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action(
        "meta",
        "post-login",
        action(
            "    api.user.set_app_metadata('plan', 'gold')\n"
            "    api.user.set_user_metadata('theme', {'dark': True})\n"
        ),
    )
    login_and_redeem(op.url, client, user)
    with op.app.app_context():
        row = db.session.get(User, user.user_id)
        assert row is not None
        assert row.app_metadata["plan"] == "gold"
        assert row.user_metadata["theme"] == {"dark": True}


def test_mfa_demand_sends_the_user_to_the_mfa_step(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action("mfa", "post-login", action("    api.multifactor.enable('any')\n"))
    _verifier, challenge = pkce()
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    assert result.status == 200 and "Set up a second step" in result.page
    assert "code" not in result.params


def test_the_chain_runs_again_on_refresh(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action(
        "protocol",
        "post-login",
        action(
            "    api.access_token.set_custom_claim('https://x/p', event.transaction.protocol)\n"
        ),
    )
    tokens = login_and_redeem(op.url, client, user, scope="openid offline_access")
    assert jwt_parts(tokens["access_token"])[1]["https://x/p"] == "oidc-basic-profile"
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=client.basic,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["https://x/p"] == "oauth2-refresh-token"

    # a deny on refresh refuses it, and the refresh token is left as it was
    op.factory.clear_actions()
    op.factory.gen_action("no-refresh", "post-login", action("    api.access.deny('later')\n"))
    denied = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": resp.json()["refresh_token"]},
        auth=client.basic,
        timeout=30,
    )
    assert denied.status_code == 403
    assert denied.json()["error"] == "access_denied"


REDIRECT_ACTION = """
def on_execute_post_login(event, api):
    token = api.redirect.encode_token({"secret": event.secrets.KEY, "payload": {"step": 1},
                                       "expires_in_seconds": 60})
    api.redirect.send_user_to("https://consent.example.test/terms", {"query": {"t": token}})

def on_continue_post_login(event, api):
    payload = api.redirect.validate_token({"secret": event.secrets.KEY,
                                           "token_parameter_name": "back"})
    api.id_token.set_custom_claim("https://x/accepted", payload["accepted"])
"""


def _sign(secret: str, payload: dict[str, Any]) -> str:
    import base64
    import hashlib
    import hmac
    import json
    import time

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = {**payload, "exp": int(time.time()) + 60}
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    part = b64(json.dumps(body).encode())
    mac = hmac.new(secret.encode(), f"{head}.{part}".encode(), hashlib.sha256).digest()
    return f"{head}.{part}.{b64(mac)}"


def test_redirect_pauses_and_continue_resumes_the_chain(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action("terms", "post-login", REDIRECT_ACTION, secrets={"KEY": "k" * 32})
    op.factory.gen_action(
        "after-terms",
        "post-login",
        action("    api.access_token.set_custom_claim('https://x/after', True)\n"),
    )
    browser = Browser(op.url)
    verifier, challenge = pkce()
    params = auth_params(client, challenge)
    result = browser.authorize(params, user)
    assert result.location and result.location.startswith("https://consent.example.test/terms")
    state = result.params["state"]
    assert result.params["t"].count(".") == 2
    # the external site sends the user back with a token signed with the shared secret
    back = _sign("k" * 32, {"accepted": "yes", "state": state})
    resp = browser.http.get(
        f"{op.url}/continue", params={"state": state, "back": back}, allow_redirects=False
    )
    # the pipeline answers /continue itself: straight back to the app with the code
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(client.redirect_uri)
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = redeem(op.url, client, code, verifier).json()
    assert jwt_parts(tokens["id_token"])[1]["https://x/accepted"] == "yes"
    assert jwt_parts(tokens["access_token"])[1]["https://x/after"] is True
    # /continue cannot be replayed
    again = browser.http.get(f"{op.url}/continue", params={"state": state, "back": back})
    assert again.status_code == 400


def test_continue_with_a_forged_token_fails_closed(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action("terms", "post-login", REDIRECT_ACTION, secrets={"KEY": "k" * 32})
    browser = Browser(op.url)
    _verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge), user)
    state = result.params["state"]
    forged = _sign("wrong-secret", {"accepted": "yes", "state": state})
    resp = browser.http.get(
        f"{op.url}/continue", params={"state": state, "back": forged}, allow_redirects=False
    )
    assert resp.headers["Location"].startswith(client.redirect_uri)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query


def test_continue_needs_the_browser_that_started_the_login(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action("terms", "post-login", REDIRECT_ACTION, secrets={"KEY": "k" * 32})
    _verifier, challenge = pkce()
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    state = result.params["state"]
    other = requests.get(f"{op.url}/continue", params={"state": state}, timeout=30)
    assert other.status_code == 400


def test_redirect_without_interaction_is_interaction_required(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    login_and_redeem(op.url, client, user, browser=browser)  # an SSO session first
    op.factory.gen_action("terms", "post-login", REDIRECT_ACTION, secrets={"KEY": "k" * 32})
    _verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge, prompt="none"))
    assert result.params["error"] == "interaction_required"


def test_executions_and_log_events_share_the_request_id(op: Any) -> None:
    from sqlalchemy import select

    from idp.audit.models import LogEvent

    client, user = op.factory.gen_client(), op.factory.gen_user()
    action_id = op.factory.gen_action("noop", "post-login", action("    pass\n"))
    login_and_redeem(op.url, client, user)
    [record] = op.factory.executions(action_id)
    assert record.request_id
    with op.app.app_context():
        events = list(db.session.scalars(select(LogEvent).where(LogEvent.user_id == user.user_id)))
        assert any(e.details.get("request_id") == record.request_id for e in events), [
            (e.type, e.details) for e in events
        ]
