"""The account page in Chromium (issue 19): axe's WCAG 2.1 audit of ``/account/mfa`` and the
pages it leads to; then a passkey enrolled from the account page by webauthn.js against a CDP
virtual authenticator, signing in without a password (UV: multi-factor at once) and, with user
verification off, asked for a second factor that is not the same key.

The server's issuer is http://localhost:PORT (an IP address cannot be an RP ID).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.flows.test_accessibility import AXE, Auditor
from tests.mfa.test_webauthn import Device, chromium, device, local, rp

__all__ = ["chromium", "device", "local", "rp"]  # the fixtures, shared with test_webauthn
pytestmark = pytest.mark.browser


def _signed_in(dev: Device, client: Any, user: Any) -> None:
    """A password login of a user without factors: no MFA step, the account page opens."""
    dev.authorize(client)
    dev.password(user)
    dev.page.wait_for_url(f"{dev.rp}**")
    dev.page.goto(f"{dev.op.url}/account/mfa")


def test_the_account_pages_pass_the_audit(chromium: Any, local: Any, rp: str) -> None:
    if not AXE.exists():
        pytest.skip("node_modules/axe-core is missing")
    dev = Device(chromium, local, rp)
    audit_context = chromium.new_context(bypass_csp=True)  # to inject axe
    try:
        client = local.factory.gen_client(redirect_uris=[rp])
        user = local.factory.gen_user()
        page = audit_context.new_page()
        dev.page, dev.context = page, audit_context
        _signed_in(dev, client, user)
        audit = Auditor()
        audit(page, "account mfa, no factor")
        page.get_by_role("button", name="Add a phone for push approval").click()
        page.get_by_role("heading", name="Set up push approval").wait_for()
        audit(page, "account push enrolment")
        page.get_by_role("button", name="My phone is set up, continue").click()
        page.get_by_role("alert").wait_for()
        audit(page, "account push enrolment, not yet")
        page.goto(f"{local.url}/account/mfa")
        page.get_by_role("button", name="Add a security key").click()
        page.get_by_role("heading", name="Add a security key").wait_for()
        audit(page, "account security key")
        page.goto(f"{local.url}/account/mfa")
        page.get_by_role("button", name="Add an authenticator app").click()
        secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.content())
        assert secret
        audit(page, "account authenticator app")
        import pyotp

        page.fill("input[name=code]", pyotp.TOTP(secret.group(1)).now())
        page.get_by_role("button", name="Turn on").click()
        page.get_by_text("Save your recovery codes").wait_for()
        page.get_by_role("button", name="I saved them, continue").click()
        page.get_by_role("button", name="Rename").first.wait_for()
        audit(page, "account mfa, one factor")
        audit.assert_clean()
    finally:
        audit_context.close()
        dev.close()


def test_a_passkey_added_on_the_account_page_signs_in(device: Device) -> None:
    op = device.op
    client, user = op.factory.gen_client(redirect_uris=[device.rp]), op.factory.gen_user()
    _signed_in(device, client, user)
    device.page.get_by_role("button", name="Add a passkey").click()
    device.page.get_by_role("heading", name="Add a passkey").wait_for()
    device.page.get_by_role("button", name="Continue").click()  # webauthn.js runs create()
    device.page.get_by_text("Save your recovery codes").wait_for()
    codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", device.page.content())
    assert len(codes) == 10
    device.page.get_by_role("button", name="I saved them, continue").click()
    listed = device.page.locator("li[data-kind=passkey]")
    listed.wait_for()
    assert "Built into a device" in listed.inner_text()
    [credential] = device.credentials()
    assert credential["isResidentCredential"]

    # no email, no password: a verified passkey is multi-factor on its own
    verifier = device.authorize(client, acr_values="mfa")
    device.page.get_by_role("button", name="Sign in with a passkey").click()
    assert device.amr(client, verifier) == ["hwk", "mfa"]

    # without user verification it is one factor: the same key is not offered again (the
    # virtual authenticator skips UV when the server discourages it)
    config = op.app.extensions["idp.services"].config
    config["MFA_WEBAUTHN_USER_VERIFICATION"] = "discouraged"
    try:
        verifier = device.authorize(client, acr_values="mfa")
        device.page.get_by_role("button", name="Sign in with a passkey").click()
        device.page.get_by_text("protected by a second step").wait_for()
        key_button = device.page.get_by_role("button", name="Use your security key or passkey")
        assert key_button.count() == 0
        device.page.get_by_text("Use a recovery code").click()
        device.page.fill("#recovery", codes[0])
        device.page.get_by_role("button", name="Use recovery code").click()
        assert device.amr(client, verifier) == ["hwk", "otp", "mfa"]
    finally:
        config["MFA_WEBAUTHN_USER_VERIFICATION"] = "preferred"
