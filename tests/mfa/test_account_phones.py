"""Several phones (issue 19): added from ``/account/mfa`` (a code through the bound
send-phone-message action, to a loopback SMS gateway), then at the login the user picks which
phone gets the code (masked numbers); one removed, the other still signs in."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers import Browser, hidden_inputs, jwt_parts
from tests.mfa.test_account_factors import form_post, kinds
from tests.mfa.test_account_mfa import factor_ids, signed_in_with_totp
from tests.mfa.test_phone import TEXTS, bind_sender, gateway, last_code, other_than, sms_op
from tests.mfa.test_totp import follow, login, mfa_page, post, tokens_from

__all__ = ["gateway", "sms_op"]  # the fixtures, shared with test_phone
HOME = "/account/mfa"
FIRST, SECOND = "+33612345678", "+447700900123"


def add_phone(browser: Browser, number: str, typed: str) -> str:
    home = browser.http.get(browser.base + HOME).text
    started = form_post(browser, f"{HOME}/phone", home)
    assert started.status_code == 200 and 'type="tel"' in started.text, started.text[:500]
    fields = hidden_inputs(started.text)
    since = len(TEXTS)
    sent = browser.http.post(browser.base + f"{HOME}/phone", data={
        **fields, "action": "send", "number": typed, "message_type": "sms"})  # fmt: skip
    assert sent.status_code == 200 and "We texted" in sent.text, sent.text[:500]
    code, _kind = last_code(number, since)
    confirm = {**hidden_inputs(sent.text), "action": "confirm"}
    wrong = browser.http.post(browser.base + f"{HOME}/phone",
                              data={**confirm, "code": other_than(code)})  # fmt: skip
    assert wrong.status_code == 401 and "not right" in wrong.text
    done = browser.http.post(browser.base + f"{HOME}/phone", data={**confirm, "code": code})
    assert done.status_code == 200 and "was added" in done.text, done.text[:500]
    return done.text


def sign_in_by_text(op: Any, client: Any, user: Any, to: str, choose: bool) -> list[str]:
    browser = Browser(op.url)
    result, verifier = login(op, browser, client, user, acr_values="mfa")
    page = mfa_page(result)
    choices = re.findall(r'name="phone" value="([^"]+)"', page)
    assert ("Which phone?" in page) is choose and len(choices) == (2 if choose else 0)
    assert FIRST not in page and SECOND not in page  # masked only
    fields: dict[str, str] = {"action": "send_sms"}
    if choose:
        picked = next(c for c in choices if re.search(
            rf'value="{c}"[^>]*> [^<]*{re.escape(to[-2:])}', page))  # fmt: skip
        fields["phone"] = picked
    since = len(TEXTS)
    sent = post(browser, page, fields)
    assert sent.status_code == 200 and "We texted" in sent.text
    code, _ = last_code(to, since)
    assert all(t["to"] == to for t in TEXTS[since:])  # the other phone got nothing
    location, _ = follow(browser, post(browser, sent.text, {"action": "phone", "code": code}))
    assert location and "code=" in location
    return list(jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]["amr"])


def test_two_phones_a_choice_at_login_then_one_removed(sms_op: Any, gateway: str) -> None:
    op = sms_op
    bind_sender(op, gateway)
    user, browser, _, _ = signed_in_with_totp(op)
    add_phone(browser, FIRST, "+33 6 12 34 56 78")
    page = add_phone(browser, SECOND, "0044 7700 900123")
    assert kinds(page) == ["totp", "phone", "phone"]
    assert "Text message to +33" in page and "Text message to +44" in page
    second_id = factor_ids(page)[2]
    page = form_post(browser, f"{HOME}/factors/{second_id}/rename", page, label="Work").text
    client = op.factory.gen_client()
    assert "sms" in sign_in_by_text(op, client, user, SECOND, choose=True)
    assert "sms" in sign_in_by_text(op, client, user, FIRST, choose=True)
    first_id = factor_ids(page)[1]
    removed = form_post(browser, f"{HOME}/factors/{first_id}/remove", page)
    assert removed.status_code == 200 and kinds(removed.text) == ["totp", "phone"]
    assert "sms" in sign_in_by_text(op, client, user, SECOND, choose=False)


def test_a_phone_start_needs_the_step_up_and_a_bad_number_is_refused(
    sms_op: Any, gateway: str, clock: Any
) -> None:
    op = sms_op
    bind_sender(op, gateway)
    user, browser, _, _ = signed_in_with_totp(op)
    home = browser.http.get(browser.base + HOME).text
    started = form_post(browser, f"{HOME}/phone", home)
    fields = hidden_inputs(started.text)
    bad = browser.http.post(browser.base + f"{HOME}/phone",
                            data={**fields, "action": "send", "number": "06 12"})  # fmt: skip
    assert bad.status_code == 400 and "country code" in bad.text
    # the pending phone is only good for a while: a stale page starts over
    clock.advance(601)
    late = browser.http.post(browser.base + f"{HOME}/phone",
                             data={**fields, "action": "send", "number": FIRST})  # fmt: skip
    assert late.status_code == 400 and "expired" in late.text
    refused = form_post(browser, f"{HOME}/phone", late.text)
    assert refused.status_code == 403 and "Type your password" in refused.text
    again = form_post(browser, f"{HOME}/phone", late.text, password=user.password)
    assert again.status_code == 200 and 'type="tel"' in again.text
