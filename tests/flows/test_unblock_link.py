"""A blocked account's owner gets an email with a single-use link that lifts the block
(Auth0's user-notification shield), over real SMTP."""

from __future__ import annotations

import threading

import pytest
import requests

from idp.extensions import db
from tests.conftest import LiveServer, _free_server, build_app
from tests.helpers import Browser, auth_params, hidden_inputs, pkce


@pytest.fixture(scope="module")
def shielded(tmp_path_factory, smtp):
    inbox, port = smtp
    tmp = tmp_path_factory.mktemp("unblock")
    app, server = _free_server(
        lambda p: build_app(
            tmp, p, SMTP_HOST="127.0.0.1", SMTP_PORT=port, BRUTE_FORCE_MAX_ATTEMPTS=3
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
