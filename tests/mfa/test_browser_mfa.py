"""A real browser (Playwright driving Debian's Chromium) enrols an authenticator app during a
login, reading the manual key from the page as a person would, then signs in again with a
fresh code; the ID tokens say "mfa" in amr (RFC 8176)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest

from tests.flows.test_browser_journey import ARGS, CHROMIUM, _code
from tests.helpers import auth_params, jwt_parts, pkce, redeem

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def rp() -> Iterator[str]:
    """A stand-in relying party on loopback that answers its callback with 200."""

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"rp callback")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cb"
    server.shutdown()
    server.server_close()


def sign_in(page: Any, op: Any, client: Any, user: Any, **extra: str) -> str:
    """Open /authorize and type the password; returns the PKCE verifier."""
    verifier, challenge = pkce()
    page.goto(f"{op.url}/authorize?{urlencode(auth_params(client, challenge, **extra))}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Continue").click()
    return verifier


def amr(op: Any, client: Any, url: str, verifier: str) -> list[str]:
    code = _code(url)
    assert code, url
    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 200, resp.text
    return list(jwt_parts(resp.json()["id_token"])[1]["amr"])


def test_enrol_an_authenticator_then_sign_in_with_it(op: Any, browser: Any, rp: str) -> None:
    from idp.core import clock as server_clock

    client = op.factory.gen_client(redirect_uris=[rp])
    user = op.factory.gen_user()
    context = browser.new_context()
    page = context.new_page()

    verifier = sign_in(page, op, client, user, acr_values="mfa")
    assert page.get_by_role("heading", name="Set up a second step").is_visible()
    key = page.locator("code.secret").first.inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", key), key
    page.get_by_label("6-digit code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on").click()
    assert page.get_by_role("heading", name="Save your recovery codes").is_visible()
    assert page.locator("ul.codes li").count() == 10
    page.get_by_role("button", name="I saved them, continue").click()
    page.wait_for_url(f"{rp}?**")
    assert "mfa" in amr(op, client, page.url, verifier)
    context.close()

    # a new browser: password, then a code from the next time step (each is accepted once)
    server_clock.advance(31)
    try:
        context = browser.new_context()
        page = context.new_page()
        verifier = sign_in(page, op, client, user)  # adaptive policy: an enrolled user is asked
        assert page.get_by_role("heading", name="Verify it's you").is_visible()
        page.get_by_label("Code from your authenticator app").fill(
            pyotp.TOTP(key).at(server_clock.now())
        )
        page.get_by_role("button", name="Verify").first.click()
        page.wait_for_url(f"{rp}?**")
        claims = amr(op, client, page.url, verifier)
        assert "mfa" in claims and "otp" in claims
        context.close()
    finally:
        server_clock.reset()
