"""Throttles on costly account actions, and: a blocked account's owner gets an email with a single-use link that lifts the block
(Auth0's user-notification shield), over real SMTP."""

from __future__ import annotations

import threading

import pytest
import requests

from idp.extensions import db
from tests.conftest import LiveServer, _free_server, build_app
from tests.helpers import Browser, auth_params, hidden_inputs, interaction_uid, pkce


@pytest.fixture(scope="module")
def shielded(tmp_path_factory, smtp):
    inbox, port = smtp
    tmp = tmp_path_factory.mktemp("unblock")
    app, server = _free_server(
        lambda p: build_app(
            tmp,
            p,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=port,
            BRUTE_FORCE_MAX_ATTEMPTS=3,
            ACCOUNT_REQUESTS_PER_IP=3,
        )
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live = LiveServer(app, server)
    live.inbox = inbox
    yield live
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def test_emailed_link_lifts_the_block_once(shielded):
    op, user = shielded, shielded.factory.gen_user()
    client = op.factory.gen_client()
    for _ in range(3):
        assert (
            Browser(op.url)
            .authorize(auth_params(client, pkce()[1]), user, password="wrong-password")
            .status
            == 401
        )
    assert Browser(op.url).authorize(auth_params(client, pkce()[1]), user).code is None
    link = op.inbox.link(user.email, "blocked")
    assert "127.0.0.1" in op.inbox.wait_for(user.email, "blocked").get_payload(decode=True).decode()
    session = requests.Session()
    page = session.get(link)
    assert page.status_code == 200 and "Unblock my account" in page.text
    form = hidden_inputs(page.text)
    done = session.post(f"{op.url}/unblock", data=form)
    assert done.status_code == 200 and "Sign-in unblocked" in done.text
    assert Browser(op.url).authorize(auth_params(client, pkce()[1]), user).code
    assert session.post(f"{op.url}/unblock", data=form).status_code == 400  # single use


def test_unknown_addresses_get_no_mail(shielded):
    op = shielded
    client = op.factory.gen_client()
    ghost = type("U", (), {"email": "ghost-unblock@example.test", "password": "x" * 12})
    for _ in range(3):
        Browser(op.url).authorize(auth_params(client, pkce()[1]), ghost)
    assert op.inbox.to("ghost-unblock@example.test") == []


def _post_form(session, url, **fields):
    form = hidden_inputs(session.get(url).text)
    return session.post(url, data=form | fields, allow_redirects=False)


def test_reset_requests_are_throttled_per_ip(shielded):
    op, session = shielded, requests.Session()
    codes = [
        _post_form(session, f"{op.url}/password/forgot", email=f"r{i}@example.test").status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_signups_are_throttled_per_ip(shielded):
    op, client = shielded, shielded.factory.gen_client()
    codes = []
    for i in range(4):
        browser = Browser(op.url)
        login = browser.http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1]))
        url = f"{op.url}/interaction/{interaction_uid(login.text)}/signup"
        codes.append(
            _post_form(
                browser.http,
                url,
                email=f"s{i}-{id(browser)}@example.test",
                password="ember-willow-granite-73",
            ).status_code
        )
    assert codes == [200, 200, 200, 429]


def test_change_password_guessing_hits_the_shields(shielded):
    op, user = shielded, shielded.factory.gen_user()
    browser = Browser(op.url)
    assert browser.authorize(auth_params(op.factory.gen_client(), pkce()[1]), user).code
    url = f"{op.url}/account/password"
    for _ in range(3):
        wrong = _post_form(browser.http, url, current_password="guess", new_password="x" * 20)
        assert wrong.status_code == 400
    right = _post_form(
        browser.http, url, current_password=user.password, new_password="ember-willow-granite-73"
    )
    assert right.status_code == 400 and "current password is wrong" in right.text
