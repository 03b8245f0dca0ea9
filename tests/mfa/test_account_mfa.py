"""``/account/mfa``: users see and remove their factors, add an authenticator app and replace
their recovery codes; every change needs a recent login or the password, and a CSRF token.
Operators remove factors with ``idp mfa reset`` (the CLI reads the instance folder)."""

from __future__ import annotations

import json
import re
from typing import Any

import pyotp
from click.testing import CliRunner
from sqlalchemy import select

from idp.cli import main
from tests.conftest import TEST_DB_URL
from tests.helpers import Browser, hidden_inputs
from tests.mfa.test_totp import enrol, follow, login, mfa_page, post


def signed_in_with_totp(op: Any) -> tuple[Any, Browser, str, list[str]]:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    secret, codes, location = enrol(browser, mfa_page(result))
    assert location and "code=" in location
    return user, browser, secret, codes


def factor_ids(page: str) -> list[str]:
    return re.findall(r'data-factor="([^"]+)"', page)


def audit_types(op: Any, user_id: str) -> list[str]:
    from idp.audit.models import LogEvent
    from idp.extensions import db

    with op.app.app_context():
        return list(db.session.scalars(select(LogEvent.type).where(LogEvent.user_id == user_id)))


def test_signed_out_is_told_to_sign_in(op: Any) -> None:
    resp = Browser(op.url).http.get(f"{op.url}/account/mfa")
    assert resp.status_code == 401 and "not signed in" in resp.text


def test_remove_a_factor_with_a_token_and_a_recent_login(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    page = browser.http.get(f"{op.url}/account/mfa").text
    assert "Authenticator app" in page and 'name="password"' not in page
    assert '<a href="/account/mfa">' in browser.http.get(f"{op.url}/account/sessions").text
    (factor_id,) = factor_ids(page)
    url = f"{op.url}/account/mfa/factors/{factor_id}/remove"
    forged = browser.http.post(url, data={}, allow_redirects=False)
    assert forged.status_code == 400  # no CSRF token: refused, nothing removed
    assert factor_ids(browser.http.get(f"{op.url}/account/mfa").text) == [factor_id]
    done = browser.http.post(url, data=hidden_inputs(page))
    assert done.status_code == 200 and "was removed" in done.text and not factor_ids(done.text)
    assert "mfa.removed" in audit_types(op, user.user_id)
    again = browser.http.post(url, data=hidden_inputs(page))
    assert again.status_code == 404


def test_an_old_login_needs_the_password(op: Any, clock: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    clock.advance(601)
    page = browser.http.get(f"{op.url}/account/mfa").text
    assert 'name="password"' in page and "more than 10 minutes ago" in page
    (factor_id,) = factor_ids(page)
    url = f"{op.url}/account/mfa/factors/{factor_id}/remove"
    token = hidden_inputs(page)
    assert browser.http.post(url, data=token).status_code == 403
    wrong = browser.http.post(url, data={**token, "password": "not-" + user.password})
    assert wrong.status_code == 403 and "password is wrong" in wrong.text
    assert factor_ids(wrong.text) == [factor_id]
    right = browser.http.post(url, data={**token, "password": user.password})
    assert right.status_code == 200 and not factor_ids(right.text)


def test_new_recovery_codes_replace_the_old_ones(op: Any) -> None:
    user, browser, _, old = signed_in_with_totp(op)
    page = browser.http.get(f"{op.url}/account/mfa").text
    assert "10 unused recovery codes" in page
    resp = browser.http.post(f"{op.url}/account/mfa/recovery-codes", data=hidden_inputs(page))
    new = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", resp.text)
    assert resp.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    back = browser.http.post(f"{op.url}/account/mfa", data=hidden_inputs(resp.text))
    assert "10 unused recovery codes" in back.text  # "continue" leads back to the page
    assert "shown only now" not in browser.http.get(f"{op.url}/account/mfa").text
    # an old code no longer signs in; a new one does
    client = op.factory.gen_client()
    for code, works in ((old[1], False), (new[0], True)):
        other = Browser(op.url)
        result, _ = login(op, other, client, user, acr_values="mfa")
        location, _ = follow(other, post(other, mfa_page(result), {"action": "recovery",
                                                                   "code": code}))  # fmt: skip
        assert bool(location and "code=" in location) is works


def test_add_an_authenticator_app_from_the_account_page(op: Any, clock: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    page = browser.http.get(f"{op.url}/account/mfa").text
    url = f"{op.url}/account/mfa/totp"
    started = browser.http.post(url, data=hidden_inputs(page))
    assert started.status_code == 200 and "Use a text message" not in started.text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', started.text)
    assert secret
    fields = hidden_inputs(started.text)
    assert fields["action"] == "enroll_totp"
    wrong = browser.http.post(url, data={**fields, "code": "000000"})
    assert wrong.status_code == 401 and "not right" in wrong.text
    # a wrong code starts over with a new key, as the login's enrolment does
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', wrong.text)
    assert secret
    fields = hidden_inputs(wrong.text)
    done = browser.http.post(url, data={**fields, "code": pyotp.TOTP(secret.group(1)).now()})
    assert done.status_code == 200 and "was added" in done.text
    assert len(factor_ids(done.text)) == 2
    assert audit_types(op, user.user_id).count("mfa.enrolled") >= 2


# ------------------------------------------------------------------ operator: idp mfa reset
def idp(op: Any, *args: str) -> Any:
    runner = CliRunner(env={"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})
    result = runner.invoke(main, ["--instance", op.app.instance_path, "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_operator_removes_one_factor_then_all(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    page = browser.http.get(f"{op.url}/account/mfa").text
    browser.http.post(f"{op.url}/account/mfa/totp", data=hidden_inputs(page))
    listed = idp(op, "mfa", "list", "--email", user.email)
    assert [f["kind"] for f in listed["factors"]] == ["totp"]  # the pending one is not listed
    assert listed["recovery_codes_left"] == 10
    factor_id = listed["factors"][0]["id"]

    runner = CliRunner(env={"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})
    unknown = runner.invoke(main, ["--instance", op.app.instance_path, "mfa", "reset",
                                   "--email", user.email, "--factor", "fac_nope"])  # fmt: skip
    assert unknown.exit_code != 0 and "no such factor" in unknown.output
    assert "Traceback" not in unknown.output

    assert idp(op, "mfa", "reset", "--email", user.email, "--factor", factor_id)["removed"] == 1
    assert idp(op, "mfa", "list", "--email", user.email)["factors"] == []
    assert "mfa.removed" in audit_types(op, user.user_id)
    assert idp(op, "mfa", "reset", "--email", user.email)["removed"] >= 0
    assert idp(op, "mfa", "list", "--email", user.email)["recovery_codes_left"] == 0
    # with nothing left, the next login that asks for MFA offers enrolment again
    result, _ = login(op, Browser(op.url), op.factory.gen_client(), user, acr_values="mfa")
    assert "Set up a second step" in mfa_page(result)


def test_operator_reset_of_an_unknown_user_is_an_error(op: Any) -> None:
    runner = CliRunner(env={"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})
    result = runner.invoke(main, ["--instance", op.app.instance_path, "mfa", "reset",
                                  "--email", "nobody@example.test"])  # fmt: skip
    assert result.exit_code != 0 and "no user with email" in result.output
