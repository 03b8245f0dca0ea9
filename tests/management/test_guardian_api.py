"""``/api/v2/guardian/factors`` (issue 14): the list in Auth0's shape, ``PUT`` of one factor,
400 naming the property, 401, 403 naming the scope, 404 for a factor idp does not have, the
tenant log; and the running server obeys: a disabled authenticator app (otp) is neither offered
for enrolment nor accepted at the MFA step, and comes back when enabled again."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from idp.mfa.policy import MFA_ACR
from tests.helpers import Browser
from tests.management.conftest import Mgmt
from tests.management.tenant_helpers import check_scopes, defaults, problem, writes
from tests.mfa.test_totp import enrol, login, mfa_page, post

__all__ = ["defaults"]
pytestmark = pytest.mark.usefixtures("defaults")
NAMES = ["sms", "push-notification", "email", "otp", "webauthn-roaming", "webauthn-platform",
         "recovery-code"]  # fmt: skip


def enabled(mgmt: Mgmt) -> dict[str, bool]:
    resp = mgmt.call("GET", "/guardian/factors")
    assert resp.status_code == 200, resp.text
    assert {f["trial_expired"] for f in resp.json()} == {False}
    return {f["name"]: f["enabled"] for f in resp.json()}


def test_list_and_switch(mgmt: Mgmt) -> None:
    assert enabled(mgmt) == dict.fromkeys(NAMES, True)  # idp offered every factor before
    resp = mgmt.call("PUT", "/guardian/factors/sms", json={"enabled": False})
    assert resp.status_code == 200 and resp.json() == {"enabled": False}
    assert enabled(mgmt) == dict.fromkeys(NAMES, True) | {"sms": False}
    mgmt.call("PUT", "/guardian/factors/webauthn-platform", json={"enabled": False})
    # one switch in idp: a security key and a platform authenticator are not told apart
    got = enabled(mgmt)
    assert got["webauthn-roaming"] is False and got["webauthn-platform"] is False
    mgmt.call("PUT", "/guardian/factors/sms", json={"enabled": True})
    assert enabled(mgmt)["sms"] is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'Missing required property: enabled'."),
        ({"enabled": "false"}, "boolean but found type string' on property enabled."),
        ({"enabled": True, "provider": "twilio"}, "Additional properties not allowed: provider'."),
    ],
)
def test_bad_bodies_name_the_property(mgmt: Mgmt, body: Any, message: str) -> None:
    problem(mgmt.call("PUT", "/guardian/factors/otp", json=body), 400, message, "invalid_body")
    assert enabled(mgmt)["otp"] is True


def test_a_factor_idp_does_not_have_is_404(mgmt: Mgmt) -> None:
    resp = mgmt.call("PUT", "/guardian/factors/duo", json={"enabled": True})
    problem(resp, 404, "no factor 'duo'", "inexistent_resource")


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [("GET", "/guardian/factors", "read:guardian_factors"),
     ("PUT", "/guardian/factors/email", "update:guardian_factors")],
)  # fmt: skip
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    check_scopes(mgmt, op, method, path, scope, {"enabled": True} if method == "PUT" else None)


def test_writes_are_tenant_log_events(mgmt: Mgmt, op: Any) -> None:
    before = len(writes(op, "guardian"))
    mgmt.call("PUT", "/guardian/factors/email", json={"enabled": False})
    mgmt.call("PUT", "/guardian/factors/duo", json={"enabled": False})  # 404: no event
    events = writes(op, "guardian")[before:]
    assert [(e.details["operation"], e.details["target"]) for e in events] == [
        ("update_factor", "email")]  # fmt: skip
    assert events[0].client_id == mgmt.client.client_id
    assert events[0].description == "Enable or disable an MFA factor (email)"


def test_a_disabled_otp_is_neither_offered_nor_accepted(mgmt: Mgmt, op: Any, clock: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    mgmt.call("PUT", "/guardian/factors/otp", json={"enabled": False})
    result, _ = login(op, Browser(op.url), client, user, acr_values=MFA_ACR)
    page = mfa_page(result)  # enrolment: no authenticator app, the other ways still
    assert "otpauth://" not in page and 'value="enroll_totp"' not in page
    assert "/push/enroll" in page and "/webauthn/register" in page
    mgmt.call("PUT", "/guardian/factors/otp", json={"enabled": True})
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values=MFA_ACR)
    page = mfa_page(result)
    assert "otpauth://totp/" in page
    secret, _codes, location = enrol(browser, page)
    assert location and location.startswith(client.redirect_uri)
    clock.advance(31)  # a fresh TOTP step (each code is accepted once)
    mgmt.call("PUT", "/guardian/factors/otp", json={"enabled": False})
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values=MFA_ACR)
    page = mfa_page(result)  # the challenge: a recovery code, no authenticator app
    assert 'value="totp"' not in page and 'value="recovery"' in page
    refused = post(browser, page, {"action": "totp", "code": pyotp.TOTP(secret).at(clock.now())})
    assert refused.status_code == 401 and "not right" in refused.text
    mgmt.call("PUT", "/guardian/factors/otp", json={"enabled": True})  # back: it works again
    again = post(browser, page, {"action": "totp", "code": pyotp.TOTP(secret).at(clock.now())})
    assert again.status_code in (302, 303), again.text[:300]


def test_a_disabled_webauthn_refuses_its_mfa_routes(mgmt: Mgmt, op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    mgmt.call("PUT", "/guardian/factors/webauthn-roaming", json={"enabled": False})
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values=MFA_ACR)
    page = mfa_page(result)
    assert "webauthn" not in page.split("<h1>", 1)[1].lower()
    uid = result.page.split('action="/interaction/', 1)[1].split("/", 1)[0]
    resp = browser.http.post(f"{op.url}/interaction/{uid}/mfa/webauthn/register/options",
                             headers={"X-CSRFToken": "x"})  # fmt: skip
    assert resp.status_code == 400
