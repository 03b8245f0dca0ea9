"""Regression tests for MFA problems found in security review: each failed before its fix."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest

from tests.helpers import Browser, hidden_inputs
from tests.mfa.test_account_mfa import factor_ids, signed_in_with_totp
from tests.mfa.test_totp import follow, login, mfa_page, post


@pytest.mark.parametrize("action", ["enroll_totp", "continue"])
def test_a_user_with_a_factor_cannot_enrol_a_new_totp_at_the_challenge(
    op: Any, action: str
) -> None:
    """Only the password: posting action=enroll_totp (or continue) on the challenge page must
    not hand out a new authenticator key (which would then pass the step)."""
    user, _victim, _secret, _codes = signed_in_with_totp(op)
    client = op.factory.gen_client()
    attacker = Browser(op.url)
    result, _ = login(op, attacker, client, user, acr_values="mfa")
    page = mfa_page(result)
    resp = post(attacker, page, {"action": action})
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', resp.text)
    assert secret is None, "an enrolment key was shown to a user who already has a factor"
    fields = hidden_inputs(resp.text)
    if "factor_id" in fields:  # defence in depth: the whole chain must not get a code
        done = post(attacker, resp.text, {"action": "enroll_totp", "factor_id":
                    fields["factor_id"], "code": "000000"})  # fmt: skip
        location, _ = follow(attacker, post(attacker, done.text, {"action": "continue"}))
        assert not (location and "code=" in location)


def test_a_password_only_session_cannot_remove_the_second_factor(op: Any) -> None:
    """The session made by the password, still waiting at its MFA step, must not manage
    factors on /account/mfa (it would strip the second step with the password alone)."""
    user, victim, _secret, _codes = signed_in_with_totp(op)
    (factor_id,) = factor_ids(victim.http.get(f"{op.url}/account/mfa").text)
    attacker = Browser(op.url)
    result, _ = login(op, attacker, op.factory.gen_client(), user, acr_values="mfa")
    mfa_page(result)  # stopped at the second step: the password only
    page = attacker.http.get(f"{op.url}/account/mfa").text
    token = hidden_inputs(page).get("csrf_token") or hidden_inputs(result.page)["csrf_token"]
    attacker.http.post(f"{op.url}/account/mfa/factors/{factor_id}/remove",
                       data={"csrf_token": token})  # fmt: skip
    assert factor_ids(victim.http.get(f"{op.url}/account/mfa").text) == [factor_id]


def test_a_password_only_session_cannot_add_an_authenticator(op: Any) -> None:
    user, victim, _secret, _codes = signed_in_with_totp(op)
    attacker = Browser(op.url)
    result, _ = login(op, attacker, op.factory.gen_client(), user, acr_values="mfa")
    token = hidden_inputs(mfa_page(result))["csrf_token"]
    url = f"{op.url}/account/mfa/totp"
    started = attacker.http.post(url, data={"csrf_token": token})
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', started.text)
    if secret is not None:
        fields = hidden_inputs(started.text)
        attacker.http.post(url, data={**fields, "code": pyotp.TOTP(secret.group(1)).now()})
    assert len(factor_ids(victim.http.get(f"{op.url}/account/mfa").text)) == 1


def test_the_session_cookie_is_rotated_at_the_mfa_step(op: Any, clock: Any) -> None:
    """S-SS-03: the session id changes at MFA step-up and the old one is dead, so a cookie
    planted (or read) before the second factor never carries it."""
    user, _victim, secret, _codes = signed_in_with_totp(op)
    browser = Browser(op.url)
    result, _ = login(op, browser, op.factory.gen_client(), user, acr_values="mfa")
    page = mfa_page(result)
    before = browser.http.cookies.get("idp_session")
    assert before
    clock.advance(31)
    resp = post(browser, page, {"action": "totp", "code": pyotp.TOTP(secret).at(clock.now())})
    location, _ = follow(browser, resp)
    assert location and "code=" in location
    after = browser.http.cookies.get("idp_session")
    assert after and after != before
    stale = Browser(op.url)
    stale.http.cookies.set("idp_session", before)
    assert stale.http.get(f"{op.url}/account/sessions").status_code == 401
    assert browser.http.get(f"{op.url}/account/mfa").status_code == 200


def test_password_only_session_cannot_change_the_password_or_end_sessions(op: Any) -> None:
    """Stopped at the MFA step, a password holder must not lock the owner out either."""
    from tests.mfa.test_totp import enrol

    client, user = op.factory.gen_client(), op.factory.gen_user()
    owner = Browser(op.url)
    result, _ = login(op, owner, client, user, acr_values="mfa")
    enrol(owner, mfa_page(result))
    attacker = Browser(op.url)
    result, _ = login(op, attacker, client, user)
    mfa_page(result)  # the password worked; the second factor is still to come
    sessions = attacker.http.get(f"{op.url}/account/sessions")
    assert sessions.status_code == 401
    page = attacker.http.get(f"{op.url}/account/password", allow_redirects=False)
    assert page.status_code == 303
    csrf = hidden_inputs(mfa_page(result)).get("csrf_token", "")
    changed = attacker.http.post(
        f"{op.url}/account/password",
        data={
            "csrf_token": csrf,
            "current_password": user.password,
            "new_password": "attacker chose this 4242",
        },
        allow_redirects=False,
    )
    assert changed.status_code == 303
    # the owner's own session (which passed MFA) still works
    assert owner.http.get(f"{op.url}/account/sessions").status_code == 200


def test_amr_names_the_factor_enrolled_whichever_continue_is_posted(op: Any) -> None:
    from tests.helpers import jwt_parts
    from tests.mfa.test_totp import tokens_from

    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, verifier = login(op, browser, client, user, acr_values="mfa")
    page = mfa_page(result)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page)
    assert secret
    done = post(browser, page, {"action": "enroll_totp",
                                "factor_id": hidden_inputs(page)["factor_id"],
                                "code": pyotp.TOTP(secret.group(1)).now()})  # fmt: skip
    assert done.status_code == 200
    uid = re.search(r'action="/interaction/([^/]+)/mfa"', done.text)
    assert uid
    resp = browser.http.post(
        f"{op.url}/interaction/{uid.group(1)}/mfa/phone",
        data={"csrf_token": hidden_inputs(done.text)["csrf_token"], "action": "continue"},
        allow_redirects=False,
    )
    location, _ = follow(browser, resp)
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert "otp" in claims["amr"] and "sms" not in claims["amr"]


def test_nothing_is_sent_to_the_owner_while_the_step_is_blocked(op: Any) -> None:
    """Guessing codes until the block must not let the guesser keep mailing the owner."""
    import time
    from pathlib import Path

    from tests.mfa.test_totp import enrol

    client, user = op.factory.gen_client(), op.factory.gen_user()
    owner = Browser(op.url)
    result, _ = login(op, owner, client, user, acr_values="mfa")
    enrol(owner, mfa_page(result))
    attacker = Browser(op.url)
    result, _ = login(op, attacker, client, user, acr_values="mfa")
    page = mfa_page(result)
    for _ in range(10):
        page = post(attacker, page, {"action": "totp", "code": "000000"}).text
    outbox = Path(op.app.instance_path) / "outbox"
    before = len(list(outbox.glob("*"))) if outbox.exists() else 0
    refused = post(attacker, page, {"action": "send_email"})
    assert refused.status_code == 429
    time.sleep(0.3)  # mail leaves in the background: give it the chance to (not) arrive
    after = len(list(outbox.glob("*"))) if outbox.exists() else 0
    assert after == before
