"""``/account/mfa`` enrols, names and removes every kind (issue 19), over HTTP: passkeys and
security keys (the software authenticator runs the ceremony the page's script would), push
devices (a device enrols from the page's ticket), the per-kind cap, and the step-up every
change needs (a stolen cookie of an old login adds nothing).

Phones have their own module (test_account_phones.py: they need the SMS gateway).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from joserfc.jwk import ECKey
from sqlalchemy import select

from idp.authenticator.client import device_token
from idp.extensions import db
from idp.i18n import when_utc_local
from idp.mfa.models import Factor
from tests.helpers import Browser, auth_params, hidden_inputs, pkce
from tests.mfa.soft_authenticator import SoftAuthenticator
from tests.mfa.test_account_mfa import audit_types, factor_ids, signed_in_with_totp
from tests.mfa.test_totp import follow
from tests.mfa.test_webauthn import _options, _post, _uid

HOME = "/account/mfa"


def kinds(page: str) -> list[str]:
    return re.findall(r'data-kind="([^"]+)"', page)


def form_post(browser: Browser, path: str, page: str, **fields: str) -> requests.Response:
    data = {"csrf_token": hidden_inputs(page)["csrf_token"], **fields}
    return browser.http.post(browser.base + path, data=data, allow_redirects=False)


def add_key(browser: Browser, key: SoftAuthenticator, kind: str,
            attachment: str | None = None) -> requests.Response:  # fmt: skip
    """Start from the account page, fetch the options as webauthn.js does, post the result."""
    home = browser.http.get(browser.base + HOME).text
    started = form_post(browser, f"{HOME}/webauthn", home, kind=kind)
    assert started.status_code == 200, started.text[:600]
    options_path = re.search(r'data-options="([^"]+)"', started.text)
    action = re.search(r'<form method="post" action="(/account/mfa/webauthn/[^"]+)"', started.text)
    assert options_path and action
    token = hidden_inputs(started.text)["csrf_token"]
    options = browser.http.post(browser.base + options_path.group(1),
                                headers={"X-CSRFToken": token})  # fmt: skip
    assert options.status_code == 200 and options.headers["Cache-Control"] == "no-store"
    wanted = "required" if kind == "passkey" else "discouraged"
    assert options.json()["authenticatorSelection"]["residentKey"] == wanted
    credential = json.loads(key.create(options.json(), browser.base))
    if attachment:
        credential["authenticatorAttachment"] = attachment
    return form_post(browser, action.group(1), started.text, credential=json.dumps(credential))


def test_passkey_and_security_key_added_renamed_removed(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    passkey = SoftAuthenticator(user_handle=user.user_id.encode())
    done = add_key(browser, passkey, "passkey", attachment="platform")
    assert done.status_code == 200 and "was added" in done.text
    assert kinds(done.text) == ["totp", "passkey"] and "Built into a device" in done.text
    key = SoftAuthenticator(user_handle=user.user_id.encode())
    done = add_key(browser, key, "key")
    assert done.status_code == 200 and kinds(done.text) == ["totp", "passkey", "key"]
    assert "Security key (USB)" in done.text and "Never used" in done.text
    # the same key again is refused (excludeCredentials, and the server checks)
    again = add_key(browser, key, "key")
    assert again.status_code == 400 and "not accepted" in again.text
    key_id = factor_ids(done.text)[2]
    named = form_post(browser, f"{HOME}/factors/{key_id}/rename", done.text,
                      label="  Blue\x07 key  on my keyring ")  # fmt: skip
    assert (
        named.status_code == 200
        and '<h2 class="factor-name">Blue key on my keyring</h2>' in named.text
    )
    removed = form_post(browser, f"{HOME}/factors/{key_id}/remove", named.text)
    assert removed.status_code == 200 and kinds(removed.text) == ["totp", "passkey"]
    events = audit_types(op, user.user_id)
    assert events.count("mfa.enrolled") >= 3 and "mfa.renamed" in events and "mfa.removed" in events


def factor_row(page: str, factor_id: str) -> str:
    found = re.search(rf'<li data-factor="{factor_id}".*?</li>', page, re.S)
    assert found, page[:600]
    return found.group(0)


def test_a_factor_used_in_a_login_says_when_on_the_account_page(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    key = SoftAuthenticator(user_handle=user.user_id.encode())
    added = add_key(browser, key, "key")
    assert added.status_code == 200 and kinds(added.text) == ["totp", "key"]
    key_id = factor_ids(added.text)[1]
    assert "Never used" in factor_row(added.text, key_id)
    # a later login whose second step is that key
    other = Browser(op.url)
    page = other.authorize(auth_params(op.factory.gen_client(), pkce()[1], acr_values="mfa"),
                           user).page  # fmt: skip
    uid = _uid(page)
    options = _options(other, f"/interaction/{uid}/mfa/webauthn/options", page).json()
    used = _post(other, f"/interaction/{uid}/mfa/webauthn", page, key.get(options, op.url))
    location, _ = follow(other, used)
    assert location and "code=" in location
    with op.app.app_context():
        last_used_at = db.session.get(Factor, key_id).last_used_at
    with op.app.test_request_context():
        when = when_utc_local(last_used_at)
    row = factor_row(other.http.get(op.url + HOME).text, key_id)
    assert f"Last used {when}" in row and "Never used" not in row


def test_a_registration_is_single_use_and_belongs_to_its_user(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    home = browser.http.get(browser.base + HOME).text
    started = form_post(browser, f"{HOME}/webauthn", home, kind="passkey")
    action = re.search(r'action="(/account/mfa/webauthn/fac_[^"]+)"', started.text)
    assert action
    token = hidden_inputs(started.text)["csrf_token"]
    # another signed-in user cannot fetch or finish this one
    _other, intruder, _, _ = signed_in_with_totp(op)
    theirs = intruder.http.post(browser.base + action.group(1) + "/options",
                                headers={"X-CSRFToken": hidden_inputs(intruder.http.get(
                                    browser.base + HOME).text)["csrf_token"]})  # fmt: skip
    assert theirs.status_code == 400
    options = browser.http.post(browser.base + action.group(1) + "/options",
                                headers={"X-CSRFToken": token}).json()  # fmt: skip
    created = SoftAuthenticator(user_handle=user.user_id.encode()).create(options, op.url)
    first = form_post(browser, action.group(1), started.text, credential=created)
    assert first.status_code == 200 and kinds(first.text) == ["totp", "passkey"]
    replay = form_post(browser, action.group(1), started.text, credential=created)
    assert replay.status_code == 400 and "expired" in replay.text
    assert kinds(replay.text) == ["totp", "passkey"]


@pytest.fixture
def cap_of_one(op: Any) -> Iterator[None]:
    config = op.app.extensions["idp.services"].config
    config["MFA_MAX_FACTORS_PER_KIND"] = 1
    try:
        yield
    finally:
        config["MFA_MAX_FACTORS_PER_KIND"] = 5


def test_the_cap_per_kind_is_enforced_by_the_server(op: Any, cap_of_one: None) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    home = browser.http.get(browser.base + HOME).text
    for path, fields in ((f"{HOME}/totp", {}), (f"{HOME}/webauthn", {"kind": "key"})):
        if path.endswith("webauthn"):
            done = add_key(browser, SoftAuthenticator(user_handle=user.user_id.encode()), "key")
            assert done.status_code == 200 and kinds(done.text) == ["totp", "key"]
        refused = form_post(browser, path, home, **fields)
        assert refused.status_code == 409 and "as many of these as allowed" in refused.text
    assert kinds(browser.http.get(browser.base + HOME).text) == ["totp", "key"]


def test_a_stolen_cookie_of_an_old_login_changes_nothing(op: Any, clock: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    clock.advance(601)  # past the fresh-login window: only the cookie, no password
    home = browser.http.get(browser.base + HOME).text
    (factor_id,) = factor_ids(home)
    attempts = [(f"{HOME}/webauthn", {"kind": "passkey"}), (f"{HOME}/push", {}),
                (f"{HOME}/phone", {}), (f"{HOME}/totp", {}), (f"{HOME}/recovery-codes", {}),
                (f"{HOME}/factors/{factor_id}/rename", {"label": "mine now"}),
                (f"{HOME}/factors/{factor_id}/remove", {})]  # fmt: skip
    for path, fields in attempts:
        refused = form_post(browser, path, home, **fields)
        assert refused.status_code == 403 and "Type your password" in refused.text, path
    wrong = form_post(browser, f"{HOME}/webauthn", home, password="guess", kind="passkey")
    assert wrong.status_code == 403 and "password is wrong" in wrong.text
    after = browser.http.get(browser.base + HOME).text
    assert factor_ids(after) == [factor_id] and "mine now" not in after
    with op.app.app_context():
        from idp.extensions import db
        from idp.mfa.models import Factor
        from idp.mfa.push_models import PushTicket

        pending = db.session.scalars(select(Factor).where(Factor.user_id == user.user_id))
        assert [f.kind for f in pending] == ["totp"]  # nothing pending was made either
        assert not list(db.session.scalars(select(PushTicket).where(
            PushTicket.user_id == user.user_id)))  # fmt: skip
    # with the password, the same change goes through
    ok = form_post(browser, f"{HOME}/factors/{factor_id}/rename", home,
                   label="Phone app", password=user.password)  # fmt: skip
    assert ok.status_code == 200 and "Phone app" in ok.text


def enrol_device(op: Any, uri: str, name: str) -> requests.Response:
    """What idp-authenticator does with the ticket, naming itself."""
    query = dict(p.split("=", 1) for p in uri.split("?", 1)[1].split("&"))
    key = ECKey.generate_key("P-256", private=True)
    device_id = key.thumbprint()
    token = device_token(key, device_id, op.url)
    body = {"ticket": query["ticket"], "jwk": key.as_dict(private=False), "name": name}
    return requests.post(f"{op.url}/mfa/push/enroll", json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_a_push_device_from_the_account_page(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    home = browser.http.get(browser.base + HOME).text
    page = form_post(browser, f"{HOME}/push", home)
    assert page.status_code == 200 and "<svg" in page.text
    # the login's enrolment page, with the ticket in the form and a way back to the account
    assert f'action="{HOME}/push"' in page.text and f'href="{HOME}"' in page.text
    uri = re.search(r'<code class="ticket">([^<]+)</code>', page.text)
    assert uri and uri.group(1).startswith("idp-push://enroll?")
    check = {"action": "check", "ticket": hidden_inputs(page.text)["ticket"]}
    early = form_post(browser, f"{HOME}/push", page.text, **check)
    assert early.status_code == 409 and "has not enrolled yet" in early.text
    from html import unescape

    assert enrol_device(op, unescape(uri.group(1)), "Pixel 8").status_code == 201
    done = form_post(browser, f"{HOME}/push", page.text, **check)
    assert done.status_code == 200 and kinds(done.text) == ["totp", "push"]
    assert '<span class="model">Pixel 8</span>' in done.text  # its own TOTP is not listed apart
    # someone else's ticket tells nothing
    _other, intruder, _, _ = signed_in_with_totp(op)
    other_home = intruder.http.get(browser.base + HOME).text
    assert form_post(intruder, f"{HOME}/push", other_home, **check).status_code == 400
    push_id = factor_ids(done.text)[1]
    removed = form_post(browser, f"{HOME}/factors/{push_id}/remove", done.text)
    assert removed.status_code == 200 and kinds(removed.text) == ["totp"]
    with op.app.app_context():
        from idp.extensions import db
        from idp.mfa.models import Factor

        left = list(db.session.scalars(select(Factor).where(Factor.user_id == user.user_id)))
        assert [f.kind for f in left] == ["totp"]  # the device's code went with it


def test_a_first_factor_added_here_makes_the_session_multi_factor(op: Any) -> None:
    """A user without factors (signed in with the password alone) adds a passkey: the key was
    just proven, so the session goes on as multi-factor under a new cookie, as after enrolling
    at a login; the old cookie no longer opens the page."""
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    from tests.mfa.test_totp import login

    result, _ = login(op, browser, client, user)
    assert result.location and "code=" in result.location  # no factor: no MFA step
    old_cookies = browser.http.cookies.copy()
    done = add_key(browser, SoftAuthenticator(user_handle=user.user_id.encode()), "passkey")
    assert done.status_code == 200 and "Save your recovery codes" in done.text
    back = form_post(browser, HOME, done.text, action="continue")
    page = browser.http.get(browser.base + HOME)
    assert back.status_code == 303 and page.status_code == 200 and kinds(page.text) == ["passkey"]
    stale = requests.Session()
    stale.cookies = old_cookies
    assert stale.get(browser.base + HOME, timeout=10).status_code == 401


def test_idp_authenticator_names_itself(op: Any, tmp_path: Any) -> None:
    """The reference device sends --name (default: the program and the system); the account
    page shows it as the device's model."""
    from html import unescape

    from tests.mfa.test_push import cli

    _user, browser, _, _ = signed_in_with_totp(op)
    home = browser.http.get(browser.base + HOME).text
    page = form_post(browser, f"{HOME}/push", home)
    uri = re.search(r'<code class="ticket">([^<]+)</code>', page.text)
    assert uri
    done = cli(tmp_path / "device.json", "enrol", unescape(uri.group(1)), "--allow-network",
               "127.0.0.0/8", "--name", "Work laptop")  # fmt: skip
    assert done.returncode == 0, done.stderr
    check = {"action": "check", "ticket": hidden_inputs(page.text)["ticket"]}
    listed = form_post(browser, f"{HOME}/push", page.text, **check)
    assert '<span class="model">Work laptop</span>' in listed.text
