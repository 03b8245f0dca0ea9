"""TOTP enrolment and challenge, recovery codes, remembered browsers, policies, amr/acr."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests

from idp.mfa.policy import MFA_ACR
from tests.helpers import Browser, auth_params, hidden_inputs, jwt_parts, pkce, redeem


def mfa_page(result: Any) -> str:
    assert result.status == 200, (result.status, result.location)
    assert "/mfa" in result.page or "second step" in result.page.lower(), result.page[:400]
    return str(result.page)


def post(browser: Browser, page: str, fields: dict[str, str]) -> requests.Response:
    action = re.search(r'action="(/interaction/[^/]+/mfa)"', page)
    assert action, page[:300]
    data = {"csrf_token": hidden_inputs(page)["csrf_token"], **fields}
    return browser.http.post(browser.base + action.group(1), data=data, allow_redirects=False)


def follow(browser: Browser, resp: requests.Response) -> tuple[str | None, str]:
    """Follow the OP's redirects; return (the app's redirect, the last page)."""
    for _ in range(10):
        if resp.status_code in (302, 303):
            location = resp.headers["Location"]
            if location.startswith("http") and not location.startswith(browser.base):
                return location, ""
            resp = browser.http.get(
                location if location.startswith("http") else browser.base + location,
                allow_redirects=False,
            )
            continue
        return None, resp.text
    raise AssertionError("redirect loop")


def enrol(browser: Browser, page: str) -> tuple[str, list[str], str | None]:
    """Scan the QR (read the key), confirm a code, save the recovery codes, continue."""
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page)
    assert secret, page[:500]
    factor_id = hidden_inputs(page)["factor_id"]
    resp = post(browser, page, {"action": "enroll_totp", "factor_id": factor_id,
                                "code": pyotp.TOTP(secret.group(1)).now()})  # fmt: skip
    assert resp.status_code == 200, resp.text[:300]
    codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", resp.text)
    assert len(codes) == 10
    location, _ = follow(browser, post(browser, resp.text, {"action": "continue"}))
    return secret.group(1), codes, location


def login(op: Any, browser: Browser, client: Any, user: Any, **extra: Any) -> tuple[Any, str]:
    verifier, challenge = pkce()
    return browser.authorize(auth_params(client, challenge, **extra), user), verifier


def tokens_from(op: Any, client: Any, location: str, verifier: str) -> dict[str, Any]:
    code = parse_qs(urlsplit(location).query)["code"][0]
    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_enrol_then_challenge_with_amr_and_acr(op: Any, clock: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, verifier = login(op, browser, client, user, acr_values=MFA_ACR)
    page = mfa_page(result)
    assert "Set up a second step" in page and "<svg" in page and "otpauth://totp/" in page
    secret, _codes, location = enrol(browser, page)
    assert location and location.startswith(client.redirect_uri)
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == MFA_ACR

    # a second browser: the challenge; the code just used is refused (same time step)
    other = Browser(op.url)
    result, verifier = login(op, other, client, user, acr_values=MFA_ACR)
    page = mfa_page(result)
    assert "Code from your authenticator app" in page
    reused = post(other, page, {"action": "totp", "code": pyotp.TOTP(secret).now()})
    assert reused.status_code == 401 and "not right" in reused.text
    clock.advance(31)
    fresh = post(other, reused.text, {"action": "totp", "code": pyotp.TOTP(secret).at(clock.now())})
    location, _ = follow(other, fresh)
    assert location and "code=" in location


def test_recovery_codes_work_once(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    _, codes, _ = enrol(browser, mfa_page(result))
    for attempt, expect_ok in ((codes[0], True), (codes[0], False)):
        other = Browser(op.url)
        result, _ = login(op, other, client, user, acr_values="mfa")
        resp = post(other, mfa_page(result), {"action": "recovery", "code": attempt.upper()})
        location, _ = follow(other, resp)
        assert bool(location and "code=" in location) is expect_ok


def test_adaptive_policy_asks_enrolled_users_only(op: Any) -> None:
    client = op.factory.gen_client()
    plain, enrolled = op.factory.gen_user(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, enrolled, acr_values="mfa")
    enrol(browser, mfa_page(result))
    # default tenant policy "adaptive": no acr_values needed any more for the enrolled user
    result, _ = login(op, Browser(op.url), client, enrolled)
    assert "Code from your authenticator app" in mfa_page(result)
    result, _ = login(op, Browser(op.url), client, plain)
    assert result.code  # a user without a factor is not asked


def test_remember_browser_skips_the_policy_not_an_explicit_request(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    secret, _, _ = enrol(browser, mfa_page(result))
    trusted = Browser(op.url)
    result, _ = login(op, trusted, client, user)  # adaptive: asked
    from idp.core import clock as server_clock

    server_clock.advance(31)
    try:
        resp = post(trusted, mfa_page(result), {"action": "totp", "remember": "1",
                    "code": pyotp.TOTP(secret).at(server_clock.now())})  # fmt: skip
        location, _ = follow(trusted, resp)
        assert location and "code=" in location
        trusted.http.cookies.set("idp_session", None)  # log out of SSO, keep the MFA cookie
        result, _ = login(op, trusted, client, user)
        assert result.code  # the policy's demand is skipped in this browser
        trusted.http.cookies.set("idp_session", None)
        result, _ = login(op, trusted, client, user, acr_values=MFA_ACR)
        assert "Code from your authenticator app" in mfa_page(result)  # an explicit ask is not
    finally:
        server_clock.reset()


def test_guessing_codes_runs_into_the_brute_force_block(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    secret, _, _ = enrol(browser, mfa_page(result))
    attacker = Browser(op.url)
    result, _ = login(op, attacker, client, user, acr_values="mfa")
    page = mfa_page(result)
    for _ in range(10):
        resp = post(attacker, page, {"action": "totp", "code": "000000"})
        assert resp.status_code == 401
        page = resp.text
    from idp.core import clock as server_clock

    server_clock.advance(31)
    try:
        right = post(attacker, page, {"action": "totp",
                     "code": pyotp.TOTP(secret).at(server_clock.now())})  # fmt: skip
        assert right.status_code == 401 and "not right" in right.text  # blocked looks the same
    finally:
        server_clock.reset()


@pytest.mark.parametrize("prompt", ["none"])
def test_prompt_none_with_mfa_required_is_interaction_required(op: Any, prompt: str) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user)
    assert result.code  # SSO session without MFA
    result, _ = login(op, browser, client, None, prompt=prompt, acr_values="mfa")
    assert result.params["error"] == "interaction_required"


def test_an_emailed_code_is_a_dependent_factor(op: Any) -> None:
    import time
    from pathlib import Path

    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    page = mfa_page(result)
    assert "Email a code" not in page  # not offered as the only factor
    enrol(browser, page)
    other = Browser(op.url)
    result, _ = login(op, other, client, user)
    page = mfa_page(result)
    assert "Email a code to" in page
    sent = post(other, page, {"action": "send_email"})
    assert sent.status_code == 200 and "We emailed you a code" in sent.text
    outbox = Path(op.app.instance_path) / "outbox"
    code = None
    for _ in range(100):
        mails = [p.read_text() for p in outbox.glob("*")] if outbox.exists() else []
        found = [re.search(r"Your code is (\d{6})", m) for m in mails if user.email in m]
        if found and found[-1]:
            code = found[-1].group(1)
            break
        time.sleep(0.05)
    assert code, "no code was mailed"
    wrong = post(
        other, sent.text, {"action": "email", "code": "000000" if code != "000000" else "111111"}
    )
    assert wrong.status_code == 401
    location, _ = follow(other, post(other, wrong.text, {"action": "email", "code": code}))
    assert location and "code=" in location
