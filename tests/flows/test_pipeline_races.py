"""One interaction answers once: a second click while the post-login chain runs for the first,
or after the code was issued, is sent on to a fresh authorization request; it never runs the
chain again or mints a second code from the same interaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, hidden_inputs, pkce

ARRIVED, RELEASE = threading.Event(), threading.Event()
HITS: list[str] = []


class Gate(BaseHTTPRequestHandler):
    """The action's HTTP call waits here until the test releases it."""

    def do_GET(self) -> None:
        HITS.append(self.path)
        ARRIVED.set()
        RELEASE.wait(20)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def gate_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    RELEASE.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = Path(tmp_path_factory.mktemp("instance"))
    with serving(
        lambda port: build_app(tmp, port, ACTIONS_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32")
    ) as s:
        yield s


def _consent_form(
    op: Any, browser: Browser, params: dict[str, Any], user: Any
) -> tuple[str, dict[str, str]]:
    result = browser.authorize(params, user)
    assert result.consent_shown
    consent_url = browser.http.get(f"{op.url}/authorize", params=params).url
    return consent_url, hidden_inputs(browser.http.get(consent_url).text) | {"decision": "allow"}


def test_a_second_allow_while_the_chain_runs_does_not_run_it_again(op: Any, gate_host: str) -> None:
    op.factory.clear_actions()
    op.factory.gen_action(
        "slow",
        "post-login",
        "def on_execute_post_login(event, api):\n"
        f"    api.http.get('http://{gate_host}/slow')\n"
        "    api.id_token.set_custom_claim('https://x/slow', True)\n",
        allowed_hosts=[gate_host],
    )
    third, user = op.factory.gen_client(first_party=False), op.factory.gen_user()
    browser = Browser(op.url)
    params = auth_params(third, pkce()[1])
    consent_url, form = _consent_form(op, browser, params, user)
    ARRIVED.clear(), RELEASE.clear(), HITS.clear()
    answers: dict[str, requests.Response] = {}

    def first_click() -> None:
        answers["first"] = browser.http.post(
            consent_url, data=form, allow_redirects=False, timeout=30
        )

    clicking = threading.Thread(target=first_click)
    clicking.start()
    try:
        assert ARRIVED.wait(20), "the chain never started"
        # the chain runs for the first click: the second is answered at once, elsewhere
        second = browser.http.post(consent_url, data=form, allow_redirects=False, timeout=10)
    finally:
        RELEASE.set()
        clicking.join(30)
    assert second.status_code == 303 and second.headers["Location"].startswith("/authorize?")
    first = answers["first"]
    assert first.status_code == 303 and first.headers["Location"].startswith(
        params["redirect_uri"] + "?code="
    )
    assert HITS == ["/slow"], "the chain ran more than once for one interaction"
    op.factory.clear_actions()


def test_a_login_form_posted_again_after_the_code_mints_no_second_code(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    page = browser.http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1]))
    action = page.text.split('action="', 1)[1].split('"', 1)[0]
    form = hidden_inputs(page.text) | {"email": user.email, "password": user.password}
    first = browser.http.post(op.url + action, data=form, allow_redirects=False)
    assert first.headers["Location"].startswith(client.redirect_uri + "?code=")
    again = browser.http.post(op.url + action, data=form, allow_redirects=False)
    assert again.status_code == 303 and again.headers["Location"].startswith("/authorize?")
    # a GET of the form of a finished login is no login form any more
    assert browser.http.get(op.url + action).status_code == 400
