"""The console's settings (``/admin/settings``): branding with a preview of the login page,
tenant settings, attack protection, MFA factors and signing keys, each saved through the
management API (which then holds the value), its 400 shown on the form with the values kept, a
stale form refused with the 412 page; the preview shows unsaved values and is the one console
page that idp's own origin (only) may frame."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import requests

from tests.console.helpers import admin, console_login
from tests.flows.test_accessibility import DESKTOP, Auditor
from tests.flows.test_accessibility import browser as browser
from tests.helpers import Browser, hidden_inputs
from tests.management.conftest import Mgmt, mgmt
from tests.management.tenant_helpers import defaults, login_page

__all__ = ["defaults", "mgmt"]
pytestmark = pytest.mark.usefixtures("defaults")

LOGO = "https://cdn.acme.test/logo.png"


def signed_in(op: Any) -> Browser:
    browser, _ = console_login(op, admin(op))
    return browser


def alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]+)<', page)
    assert found, page[:800]
    return html.unescape(found.group(1))


def form_inputs(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to ``action`` (a page with several forms)."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, page[:800]
    return hidden_inputs(form.group(0))


def branding_form(**values: str) -> dict[str, str]:
    return {"name": "idp", "logo_url": "", "colour": "#2457c5", "support_email": "", **values}


def test_the_settings_index_links_each_page(op: Any) -> None:
    browser = signed_in(op)
    index = browser.http.get(f"{op.url}/admin/settings")
    assert index.status_code == 200
    for path in ("branding", "tenant", "attack-protection", "mfa", "keys"):
        assert f'href="/admin/settings/{path}"' in index.text
        assert browser.http.get(f"{op.url}/admin/settings/{path}").status_code == 200


def test_branding_is_saved_and_the_login_page_shows_it(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    form = browser.http.get(f"{op.url}/admin/settings/branding")
    assert 'value="#2457c5"' in form.text and "<iframe" in form.text
    assert "frame-src 'self'" in form.headers["Content-Security-Policy"]
    assert form.headers["X-Frame-Options"] == "DENY"  # the console page itself is not framed
    tenant_etag = mgmt.call("GET", "/tenants/settings").headers["ETag"]

    saved = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(form.text), "save": "1", **branding_form(
            name="Acme", logo_url=LOGO, colour="#aa3300", support_email="help@acme.test")})  # fmt: skip
    assert saved.status_code == 200 and "Saved" in saved.text, saved.text[:800]
    assert mgmt.call("GET", "/branding").json() == {"colors": {"primary": "#aa3300"},
                                                    "logo_url": LOGO}  # fmt: skip
    tenant = mgmt.call("GET", "/tenants/settings").json()
    assert tenant["friendly_name"] == "Acme" and tenant["support_email"] == "help@acme.test"

    login = login_page(op).text
    assert f'src="{LOGO}" alt="Acme"' in login
    css = re.search(r'href="(/branding\.css[^"]*)"', login).group(1)  # type: ignore[union-attr]
    assert "--accent: #aa3300" in requests.get(f"{op.url}{html.unescape(css)}", timeout=30).text

    # only what changed is written: a new colour leaves the tenant settings' version alone
    tenant_etag = mgmt.call("GET", "/tenants/settings").headers["ETag"]
    form = browser.http.get(f"{op.url}/admin/settings/branding")
    browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(form.text), "save": "1", **branding_form(
            name="Acme", logo_url="", colour="#0b6e4f", support_email="help@acme.test")})  # fmt: skip
    assert mgmt.call("GET", "/branding").json() == {"colors": {"primary": "#0b6e4f"}}
    assert mgmt.call("GET", "/tenants/settings").headers["ETag"] == tenant_etag
    assert 'class="brand">Acme<' in login_page(op).text  # no logo: the name shows


def test_the_preview_shows_the_edited_values_without_saving_them(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    form = browser.http.get(f"{op.url}/admin/settings/branding").text
    shown = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(form), "preview": "1",
        **branding_form(name="Preview Co", colour="#123456", logo_url=LOGO)})  # fmt: skip
    assert shown.status_code == 200 and "Nothing is saved" in shown.text
    assert 'value="Preview Co"' in shown.text and 'value="#123456"' in shown.text
    src = html.unescape(re.search(r'<iframe id="preview" src="([^"]+)"', shown.text).group(1))  # type: ignore[union-attr]
    assert "sandbox" in re.search(r"<iframe[^>]+>", shown.text).group(0)  # type: ignore[union-attr]

    preview = browser.http.get(f"{op.url}{src}")
    assert preview.status_code == 200
    assert f'src="{LOGO}" alt="Preview Co"' in preview.text and "Sign in" in preview.text
    csp = preview.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "img-src 'self' data: https://cdn.acme.test" in csp
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    css = html.unescape(re.search(r'href="([^"]*preview\.css[^"]*)"', preview.text).group(1))  # type: ignore[union-attr]
    # the sandboxed frame fetches its stylesheet without the console's cookie
    assert "--accent: #123456" in requests.get(f"{op.url}{css}", timeout=30).text

    # nothing was saved, and the preview is no page for anyone signed out
    assert mgmt.call("GET", "/branding").json() == {"colors": {"primary": "#2457c5"}}
    assert mgmt.call("GET", "/tenants/settings").json()["friendly_name"] != "Preview Co"
    assert "Preview Co" not in login_page(op).text
    outsider = requests.get(f"{op.url}{src}", allow_redirects=False, timeout=30)
    assert outsider.status_code == 303 and "Preview Co" not in outsider.text


def test_a_bad_colour_is_the_apis_400_on_the_form(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    form = browser.http.get(f"{op.url}/admin/settings/branding").text
    bad = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(form), "save": "1", **branding_form(name="Kept", colour="red")})  # fmt: skip
    assert bad.status_code == 400
    assert "#rrggbb" in alert(bad.text) and "colors.primary" in alert(bad.text)
    assert 'value="red"' in bad.text and 'value="Kept"' in bad.text  # the values kept
    assert mgmt.call("GET", "/branding").json()["colors"]["primary"] == "#2457c5"
    assert mgmt.call("GET", "/tenants/settings").json()["friendly_name"] != "Kept"


def test_a_refused_second_write_says_what_was_saved(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    form = browser.http.get(f"{op.url}/admin/settings/branding").text
    half = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(form), "save": "1",
        **branding_form(colour="#0b6e4f", support_email="nowhere")})  # fmt: skip
    assert half.status_code == 400 and "support_email" in alert(half.text)
    assert alert(half.text).startswith("The logo and colour were saved, not the name and")
    assert mgmt.call("GET", "/branding").json()["colors"]["primary"] == "#0b6e4f"
    # the form now carries the branding's new ETag: sending it again is no 412
    fixed = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(half.text), "save": "1",
        **branding_form(colour="#0b6e4f", support_email="help@acme.test")})  # fmt: skip
    assert fixed.status_code == 200 and "Saved" in fixed.text, fixed.text[:800]
    assert mgmt.call("GET", "/tenants/settings").json()["support_email"] == "help@acme.test"


def test_a_stale_form_is_refused_with_the_412_page(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    first = browser.http.get(f"{op.url}/admin/settings/branding").text
    ok = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(first), "save": "1", **branding_form(colour="#111111")})  # fmt: skip
    assert ok.status_code == 200 and "Saved" in ok.text
    stale = browser.http.post(f"{op.url}/admin/settings/branding", data={
        **hidden_inputs(first), "save": "1", **branding_form(colour="#222222")})  # fmt: skip
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    assert mgmt.call("GET", "/branding").json()["colors"]["primary"] == "#111111"

    page = browser.http.get(f"{op.url}/admin/settings/tenant").text
    mgmt.call("PATCH", "/tenants/settings", json={"friendly_name": "Changed elsewhere"})
    stale = browser.http.post(f"{op.url}/admin/settings/tenant", data={
        **hidden_inputs(page), "friendly_name": "Lost", "session_lifetime": "1"})  # fmt: skip
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    assert mgmt.call("GET", "/tenants/settings").json()["friendly_name"] == "Changed elsewhere"


def test_tenant_settings_are_saved(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    page = browser.http.get(f"{op.url}/admin/settings/tenant").text
    bad = browser.http.post(f"{op.url}/admin/settings/tenant", data={
        **hidden_inputs(page), "friendly_name": "Tenant Co", "support_email": "not-an-address",
        "session_lifetime": "2"})  # fmt: skip
    assert bad.status_code == 400 and "support_email" in alert(bad.text)
    assert 'value="not-an-address"' in bad.text and 'value="Tenant Co"' in bad.text
    saved = browser.http.post(f"{op.url}/admin/settings/tenant", data={
        **hidden_inputs(bad.text), "friendly_name": "Tenant Co",
        "support_email": "ops@tenant.test", "session_lifetime": "2.5"})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text, saved.text[:800]
    held = mgmt.call("GET", "/tenants/settings").json()
    assert (held["friendly_name"], held["support_email"], held["session_lifetime"]) == (
        "Tenant Co", "ops@tenant.test", 2.5)  # fmt: skip
    assert "Tenant Co" in login_page(op).text
    cleared = browser.http.post(f"{op.url}/admin/settings/tenant", data={
        **hidden_inputs(saved.text), "friendly_name": "Tenant Co", "support_email": "",
        "session_lifetime": "x"})  # fmt: skip
    assert cleared.status_code == 400 and "session_lifetime" in alert(cleared.text)
    assert mgmt.call("GET", "/tenants/settings").json()["support_email"] == "ops@tenant.test"


def test_attack_protection_is_saved(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    brute, ip = ("/admin/settings/attack-protection/brute-force-protection",
                 "/admin/settings/attack-protection/suspicious-ip-throttling")  # fmt: skip
    page = browser.http.get(f"{op.url}/admin/settings/attack-protection").text
    bad = browser.http.post(f"{op.url}{brute}", data={
        **form_inputs(page, brute), "enabled": "on", "block": "on", "max_attempts": "7",
        "allowlist": "10.0.0.0/8\r\nnot an address"})  # fmt: skip
    assert bad.status_code == 400 and "allowlist" in alert(bad.text)
    assert "not an address" in bad.text and 'value="7"' in bad.text
    saved = browser.http.post(f"{op.url}{brute}", data={
        **form_inputs(bad.text, brute), "enabled": "on", "block": "on", "max_attempts": "7",
        "allowlist": "10.0.0.0/8\r\n"})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text
    assert mgmt.call("GET", "/attack-protection/brute-force-protection").json() == {
        "enabled": True, "shields": ["block"], "mode": "count_per_identifier_and_ip",
        "allowlist": ["10.0.0.0/8"], "max_attempts": 7}  # fmt: skip

    saved = browser.http.post(f"{op.url}{ip}", data={
        **form_inputs(saved.text, ip), "block": "on", "allowlist": "192.0.2.1",
        "pre-login-max_attempts": "50", "pre-login-rate": "1200",
        "pre-user-registration-max_attempts": "10", "pre-user-registration-rate": "6000"})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text
    assert mgmt.call("GET", "/attack-protection/suspicious-ip-throttling").json() == {
        "enabled": False, "shields": ["block"], "allowlist": ["192.0.2.1"],
        "stage": {"pre-login": {"max_attempts": 50, "rate": 1200},
                  "pre-user-registration": {"max_attempts": 10, "rate": 6000}}}  # fmt: skip
    # the other form was rendered from the API too, and is stale now: 412
    stale = browser.http.post(f"{op.url}{ip}", data={
        **form_inputs(page, ip), "pre-login-max_attempts": "1", "pre-login-rate": "1",
        "pre-user-registration-max_attempts": "1", "pre-user-registration-rate": "1"})  # fmt: skip
    assert stale.status_code == 412


def test_an_mfa_factor_switched_off_is_off_in_the_api(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    page = browser.http.get(f"{op.url}/admin/settings/mfa").text
    assert 'id="state-otp">On<' in page
    off = browser.http.post(f"{op.url}/admin/settings/mfa/otp",
                            data={**form_inputs(page, "/admin/settings/mfa/otp")})  # fmt: skip
    assert off.status_code == 200 and 'id="state-otp">Off<' in off.text
    factors = {f["name"]: f["enabled"] for f in mgmt.call("GET", "/guardian/factors").json()}
    assert factors["otp"] is False and factors["sms"] is True
    on = browser.http.post(f"{op.url}/admin/settings/mfa/otp",
                           data={**form_inputs(off.text, "/admin/settings/mfa/otp")})  # fmt: skip
    assert 'id="state-otp">On<' in on.text
    assert browser.http.post(f"{op.url}/admin/settings/mfa/duo", data={
        **form_inputs(page, "/admin/settings/mfa/otp")}).status_code == 404  # fmt: skip


def jwks_kids(op: Any) -> set[str]:
    keys = requests.get(f"{op.url}/.well-known/jwks.json", timeout=30).json()["keys"]
    return {k["kid"] for k in keys}


def test_rotate_then_revoke_the_previous_key(op: Any, mgmt: Mgmt) -> None:
    browser = signed_in(op)
    before = next(k for k in mgmt.call("GET", "/keys/signing").json() if k["current"])
    listed = browser.http.get(f"{op.url}/admin/settings/keys").text
    assert before["kid"] in listed and "Current" in listed
    confirm = browser.http.get(f"{op.url}/admin/settings/keys/rotate").text
    rotated = browser.http.post(f"{op.url}/admin/settings/keys/rotate",
                                data=form_inputs(confirm, "/admin/settings/keys/rotate"))  # fmt: skip
    assert rotated.status_code == 200 and "Rotated" in rotated.text
    keys = {k["kid"]: k for k in mgmt.call("GET", "/keys/signing").json()}
    made = next(k for k in keys.values() if k["current"])
    assert made["kid"] != before["kid"] and keys[before["kid"]]["previous"]
    assert {made["kid"], before["kid"]} <= jwks_kids(op)
    assert made["kid"] in rotated.text

    # the current key offers no revocation; the previous one does, saying what it breaks
    current = browser.http.get(f"{op.url}/admin/settings/keys/{made['kid']}/revoke").text
    assert "cannot be revoked" in current and "<button" not in current.split("<main>")[1]
    action = f"/admin/settings/keys/{before['kid']}/revoke"
    confirm = browser.http.get(f"{op.url}{action}").text
    assert "stops verifying" in confirm
    revoked = browser.http.post(f"{op.url}{action}", data=form_inputs(confirm, action))
    assert revoked.status_code == 200 and "Revoked" in revoked.text
    assert before["kid"] not in jwks_kids(op) and made["kid"] in jwks_kids(op)
    # the API's token was signed by the revoked key: it no longer verifies; a new one does
    assert mgmt.call("GET", "/keys/signing").status_code == 401
    got = mgmt.call("GET", f"/keys/signing/{before['kid']}", token=mgmt.token())
    assert got.json()["revoked"] is True


def in_chromium(browser: Any, op: Any, **options: Any) -> Any:
    """A Chromium page holding a console session signed in over HTTP (cookies copied)."""
    signed = signed_in(op)
    context = browser.new_context(viewport=DESKTOP, **options)
    context.add_cookies([{"name": c.name, "value": c.value or "", "domain": "127.0.0.1",
                          "path": c.path} for c in signed.http.cookies])  # fmt: skip
    return context.new_page()


@pytest.mark.browser
def test_the_preview_follows_the_form_in_a_browser(op: Any, browser: Any, mgmt: Mgmt) -> None:
    """Under the real CSP: the console page may frame the preview, the preview loads, and
    settings.js updates it as the admin types; then every settings page passes the audit."""
    from playwright.sync_api import expect

    page = in_chromium(browser, op)
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{op.url}/admin/settings/branding")
    frame = page.frame_locator("#preview")
    expect(frame.get_by_role("heading", name="Sign in")).to_be_visible()
    button = frame.get_by_role("button", name="Continue")
    expect(button).to_have_css("background-color", "rgb(36, 87, 197)")  # #2457c5, saved
    page.get_by_label("Primary colour").fill("#aa3300")
    page.get_by_label("Name", exact=True).fill("Typed Co")
    expect(button).to_have_css("background-color", "rgb(170, 51, 0)")
    expect(frame.locator(".brand")).to_have_text("Typed Co")
    assert mgmt.call("GET", "/branding").json()["colors"]["primary"] == "#2457c5"  # unsaved
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    assert mgmt.call("GET", "/branding").json()["colors"]["primary"] == "#aa3300"
    assert not refusals, refusals
    page.context.close()

    audit = Auditor()
    page = in_chromium(browser, op, bypass_csp=True)  # axe is injected inline
    for path in ("", "/branding", "/tenant", "/attack-protection", "/mfa", "/keys",
                 "/keys/rotate"):  # fmt: skip
        page.goto(f"{op.url}/admin/settings{path}")
        audit(page, path or "settings")
    assert mgmt.call("POST", "/keys/signing/rotate").status_code == 201
    previous = next(k["kid"] for k in mgmt.call("GET", "/keys/signing").json() if k["previous"])
    page.goto(f"{op.url}/admin/settings/keys/{previous}/revoke")
    audit(page, "revoke confirmation")
    page.goto(f"{op.url}/admin/settings/attack-protection")
    page.get_by_label("Failed attempts allowed").fill("many")
    page.get_by_role("button", name="Save brute-force protection").click()
    expect(page.get_by_role("alert")).to_contain_text("max_attempts")
    audit(page, "attack protection, refused")
    page.context.close()
    audit.assert_clean()
