"""The device flow's pages in Debian's Chromium (Playwright): the whole flow with JavaScript
off (a person types the code, signs in, approves; the device polls its tokens), and the
axe-core WCAG 2.1 A/AA audit of every /device page (light and dark, no sideways scrolling at
375 px) with the Auditor of tests/flows/test_accessibility.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.device.helpers import device_client, error_of, poll, started
from tests.flows.test_accessibility import Auditor, _new_context, browser  # noqa: F401

pytestmark = pytest.mark.browser


def _sign_in(page: Any, user: Any) -> None:
    page.fill("#email", user.email)
    page.fill("#password", user.password)
    page.click("button[type=submit]")


def test_the_flow_without_javascript(dev, browser):  # noqa: F811
    client = device_client(dev)
    body = started(dev.url, client, scope="openid email offline_access")
    user = dev.factory.gen_user()
    context = _new_context(browser, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(dev.url + "/device")
        page.fill("#user_code", body["user_code"].lower())
        page.click("button[type=submit]")
        _sign_in(page, user)
        assert page.locator("h1").inner_text() == "Connect test native?"
        assert user.email in page.content()
        assert error_of(poll(dev.url, client, body["device_code"])) == "authorization_pending"
        page.click("button[value=allow]")
        assert page.locator("h1").inner_text() == "Device connected"
    finally:
        context.close()
    tokens = poll(dev.url, client, body["device_code"]).json()
    assert tokens["id_token"] and tokens["refresh_token"]


def test_every_device_page_passes_the_audit(dev, browser):  # noqa: F811
    audit = Auditor()
    client = device_client(dev)
    body = started(dev.url, client, scope="openid profile email")
    context = _new_context(browser, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(dev.url + "/device")
        audit(page, "device: enter the code")
        page.goto(body["verification_uri_complete"])
        audit(page, "device: confirm the code from the link")
        page.fill("#user_code", "BBBB-BBBB")
        page.click("button[type=submit]")
        audit(page, "device: a wrong code")
        page.fill("#user_code", body["user_code"])
        page.click("button[type=submit]")
        _sign_in(page, dev.factory.gen_user())
        audit(page, "device: approve")
        page.click("button[value=allow]")
        audit(page, "device: connected")
        denied = started(dev.url, client)
        page.goto(denied["verification_uri_complete"])
        page.click("button[type=submit]")  # signed in already: straight to the approval
        page.click("button[value=deny]")
        audit(page, "device: not connected")
    finally:
        context.close()
    assert len(audit.audited) == 6
    audit.assert_clean()
