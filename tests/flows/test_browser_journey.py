"""A real browser (Playwright driving Debian's Chromium): sign up, verify the email from the
SMTP server, log in, consent, SSO into a second application, log out, be asked again."""

from __future__ import annotations

import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.helpers import auth_params, login_form_action, pkce

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def rp():
    """A stand-in relying party on loopback that answers its callback with 200."""

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"rp callback")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cb"
    server.shutdown()
    server.server_close()


def _authorize_url(op, client, **extra):
    return f"{op.url}/authorize?{urlencode(auth_params(client, pkce()[1], **extra))}"


def _code(url):
    return parse_qs(urlsplit(url).query).get("code", [None])[0]


def test_sign_up_verify_login_consent_sso_logout(mailing, browser, rp):
    op = mailing
    partner = op.factory.gen_client(redirect_uris=[rp], first_party=False)  # asks for consent
    own_app = op.factory.gen_client(redirect_uris=[rp])  # first-party: SSO without a prompt
    email, password = f"pw-{secrets.token_hex(4)}@example.test", "lantern-orchard-velvet-47"

    context = browser.new_context()
    page = context.new_page()

    page.goto(_authorize_url(op, partner, scope="openid email"))
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign up").click()
    assert page.get_by_role("heading", name="Check your email").is_visible()

    link = op.inbox.link(email, "Verify")
    page.goto(link)
    page.get_by_role("button", name="Verify my email address").click()
    assert page.get_by_role("heading", name="Email verified").is_visible()

    page.goto(_authorize_url(op, partner, scope="openid email"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", name="Allow test regular_web?").is_visible()
    assert page.get_by_text("See your email address").is_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{rp}?**")
    assert _code(page.url)

    page.goto(_authorize_url(op, own_app))  # SSO: no password typed
    page.wait_for_url(f"{rp}?**")
    assert _code(page.url)

    page.goto(f"{op.url}/oidc/logout")
    page.get_by_role("button", name="Yes, sign me out").click()
    assert page.get_by_role("heading", name="You are signed out").is_visible()

    page.goto(_authorize_url(op, own_app))  # signed out: the login form again, no SSO
    assert _code(page.url) is None and not page.url.startswith(rp)
    assert login_form_action(page.content())
    assert page.get_by_label("Password").is_visible()
    context.close()
