"""pre-user-registration, post-user-registration and post-change-password."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.actions.models import ActionExecution
from idp.extensions import db
from idp.identity.models import User
from tests.helpers import Browser, auth_params, hidden_inputs, pkce

pytestmark = pytest.mark.usefixtures("fresh_chain")
STRONG = "correct horse battery staple 42"


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def signup(op: Any, email: str) -> requests.Response:
    client = op.factory.gen_client()
    _, challenge = pkce()
    browser = Browser(op.url)
    result = browser.authorize(auth_params(client, challenge))
    assert result.login_shown
    page = browser.http.get(f"{op.url}/interaction/{_uid(result.page)}/signup")
    fields = hidden_inputs(page.text)
    fields.update(email=email, password=STRONG)
    return browser.http.post(page.url, data=fields)


def _uid(page: str) -> str:
    import re

    match = re.search(r"/interaction/([^/]+)/signup", page)
    assert match, page[:300]
    return match.group(1)


def user_by_email(op: Any, email: str) -> User | None:
    with op.app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def wait_for_execution(op: Any, action_id: str) -> ActionExecution:
    for _ in range(100):
        with op.app.app_context():
            row = db.session.scalar(
                select(ActionExecution).where(ActionExecution.action_id == action_id)
            )
            if row is not None:
                db.session.expunge(row)
                return row
        time.sleep(0.05)
    raise AssertionError("the background execution never happened")


def test_pre_registration_deny_shows_the_user_message_and_writes_nothing(op: Any) -> None:
    op.factory.gen_action(
        "domains",
        "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n"
        "    if event.user.email.endswith('@blocked.test'):\n"
        "        api.access.deny('domain', 'Sign-ups from this domain are closed.')\n",
    )
    resp = signup(op, "someone@blocked.test")
    assert resp.status_code == 400
    assert "Sign-ups from this domain are closed." in resp.text
    assert user_by_email(op, "someone@blocked.test") is None


def test_pre_registration_deny_looks_the_same_for_a_known_address(op: Any) -> None:
    known = op.factory.gen_user(email="known@blocked.test")
    op.factory.gen_action(
        "domains",
        "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n"
        "    api.validation.error('invalid_domain', 'Not here.')\n",
    )
    fresh = signup(op, "fresh@blocked.test")
    again = signup(op, known.email)
    assert fresh.status_code == again.status_code == 400
    assert "Not here." in fresh.text and "Not here." in again.text


def test_pre_registration_sets_metadata_and_fails_closed(op: Any) -> None:
    op.factory.gen_action(
        "meta",
        "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n"
        "    api.user.set_app_metadata('source', 'signup')\n"
        "    api.user.set_user_metadata('lang', 'fr')\n",
    )
    assert signup(op, "meta@example.test").status_code == 200
    user = user_by_email(op, "meta@example.test")
    assert user is not None
    assert user.app_metadata == {"source": "signup"}
    assert user.user_metadata == {"lang": "fr"}

    op.factory.clear_actions()
    op.factory.gen_action(
        "broken",
        "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n    1 / 0\n",
    )
    resp = signup(op, "broken@example.test")
    assert resp.status_code == 400
    assert "could not create your account" in resp.text
    assert user_by_email(op, "broken@example.test") is None


def test_post_registration_runs_after_the_commit(op: Any) -> None:
    action_id = op.factory.gen_action(
        "welcome",
        "post-user-registration",
        "def on_execute_post_user_registration(event, api):\n"
        "    print('welcome', event.user.email, event.user.user_id)\n",
    )
    assert signup(op, "welcome@example.test").status_code == 200
    user = user_by_email(op, "welcome@example.test")
    assert user is not None
    record = wait_for_execution(op, action_id)
    assert record.outcome == "success"
    assert f"welcome welcome@example.test {user.id}" in record.logs
    assert record.user_id == user.id


def test_post_change_password_runs_after_the_change(op: Any) -> None:
    action_id = op.factory.gen_action(
        "notify",
        "post-change-password",
        "def on_execute_post_change_password(event, api):\n    print('changed', event.user.email)\n",
    )
    user = op.factory.gen_user(password=STRONG)
    client = op.factory.gen_client()
    browser = Browser(op.url)
    _, challenge = pkce()
    browser.authorize(auth_params(client, challenge), user)
    page = browser.http.get(f"{op.url}/account/password")
    fields = hidden_inputs(page.text)
    fields.update(current_password=STRONG, new_password="another fine horse staple 77")
    resp = browser.http.post(f"{op.url}/account/password", data=fields)
    assert resp.status_code == 200, resp.text[:500]
    record = wait_for_execution(op, action_id)
    assert f"changed {user.email}" in record.logs
