"""The registration triggers on a first login through a SAML connection, both ways in: the
login page's SP-initiated login and IdP-initiated SSO (an unsolicited response, which signs
the user in without an authorization request). post-user-registration runs once, in the
background, for the user the first login created and committed, and not at the next login."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer
from tests.connections.saml_idp import SamlIdp
from tests.connections.social import SocialBrowser
from tests.connections.test_saml_login import _connect, _initiating_client, _login, _sp
from tests.connections.test_social_triggers import _user, watch_background_jobs

WELCOME = (
    "def on_execute_post_user_registration(event, api):\n"
    "    print('welcome', event.connection.name, event.user.email, event.user.user_id)\n"
)


def _welcome_action(op: LiveServer) -> str:
    op.factory.clear_actions()
    return op.factory.gen_action("welcome", "post-user-registration", WELCOME)


def _ran_once_for(op: LiveServer, action_id: str, name: str, email: str, finished: list) -> str:
    """The one execution: after the commit, for the new user; returns the user's id."""
    user = _user(op, email)
    assert user is not None
    assert len(finished) == 1 and finished[0].wait(30), "post-user-registration never ran"
    (record,) = op.factory.executions(action_id)
    assert record.outcome == "success" and record.user_id == user.id
    assert f"welcome {name} {email} {user.id}" in record.logs
    return user.id


def test_a_first_sp_initiated_saml_login_runs_post_user_registration_once(
    social_op: LiveServer, saml_idp: SamlIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    action_id = _welcome_action(op)
    username = "reg-" + secrets.token_hex(3)
    email = f"{username}@saml.test"
    seen, finished = watch_background_jobs(op, monkeypatch, email)

    browser, arrival, _ = _login(op, saml_idp, client, name, username)
    assert browser.tokens(arrival)
    user_id = _ran_once_for(op, action_id, name, email, finished)
    assert seen == [user_id]  # the user was committed when the chain started

    browser, arrival, _ = _login(op, saml_idp, client, name, username)
    assert browser.tokens(arrival)
    assert len(finished) == 1 and len(op.factory.executions(action_id)) == 1
    op.factory.clear_actions()


def test_a_first_idp_initiated_saml_login_runs_post_user_registration_once(
    social_op: LiveServer, saml_idp: SamlIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = social_op
    client = _initiating_client(op)
    name = _connect(op, saml_idp, client, idp_initiated=True, default_client_id=client.client_id)
    action_id = _welcome_action(op)
    username = "portal-" + secrets.token_hex(3)
    email = f"{username}@saml.test"
    seen, finished = watch_background_jobs(op, monkeypatch, email)

    for _ in range(2):  # the first login creates the user; the second only signs in
        browser = SocialBrowser(op, client)
        fields = saml_idp.respond(None, username, sp=_sp(op, saml_idp, name))
        posted = browser.http.post(
            f"{op.url}/login/callback/{name}", data=fields, allow_redirects=False
        )
        assert posted.status_code == 303, posted.text[:300]
        assert urlsplit(posted.headers["Location"]).netloc == "rp.test"
    user_id = _ran_once_for(op, action_id, name, email, finished)
    assert seen == [user_id]
    assert len(op.factory.executions(action_id)) == 1
    op.factory.clear_actions()
