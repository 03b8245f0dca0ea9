"""Regression tests for MFA problems found in security review: each failed before its fix."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import Browser, hidden_inputs
from tests.mfa.test_account_mfa import signed_in_with_totp
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
