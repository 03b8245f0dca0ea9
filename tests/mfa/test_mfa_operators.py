"""Operators see and remove every kind of factor (issue 19): ``idp mfa list|reset`` and the
management API's ``/users/{id}/authentication-methods``, over a user who enrolled each kind from
``/account/mfa`` (an authenticator app, a passkey, a security key, a push device with a Web Push
subscription, two phones through the send-phone-message action, recovery codes)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from joserfc.jwk import ECKey

from idp.authenticator.client import device_token
from idp.cli import main
from tests.conftest import TEST_DB_URL, LiveServer, build_app, serving
from tests.helpers import Browser, hidden_inputs
from tests.management.conftest import Mgmt, grant
from tests.mfa.soft_authenticator import SoftAuthenticator
from tests.mfa.test_account_factors import add_key, form_post, kinds
from tests.mfa.test_account_mfa import audit_types, signed_in_with_totp
from tests.mfa.test_account_phones import FIRST, SECOND, add_phone
from tests.mfa.test_phone import bind_sender, gateway
from tests.mfa.webpush_service import PushService, Subscriber, push_service

__all__ = ["gateway"]  # the SMS gateway fixture, shared with test_phone
HOME = "/account/mfa"
ORDER = ["totp", "passkey", "key", "push", "phone", "phone", "recovery"]
TYPES = ["totp", "webauthn-platform", "webauthn-roaming", "push-notification", "phone", "phone",
         "recovery-code"]  # fmt: skip


@pytest.fixture(scope="module")
def service() -> Iterator[PushService]:
    with push_service() as running:
        yield running


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, service: PushService) -> Iterator[LiveServer]:
    """SMS gateway and push service on loopback, allowed as an operator would allow them."""
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"MFA_WEBPUSH_HOSTS": f"127.0.0.1:{service.port}",
                "MFA_WEBPUSH_ALLOW_NETWORKS": "127.0.0.0/8",
                "ACTIONS_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32"}  # fmt: skip
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


def idp(op: Any, *args: str, json_out: bool = True) -> Any:
    runner = CliRunner(env={"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})
    flags = ["--json"] if json_out else []
    result = runner.invoke(main, ["--instance", op.app.instance_path, *flags, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if json_out else result.output


def add_web_push_device(op: Any, browser: Browser, service: PushService) -> str:
    """The account page's ticket, enrolled by a device that brings a push subscription."""
    home = browser.http.get(browser.base + HOME).text
    page = form_post(browser, f"{HOME}/push", home)
    uri = re.search(r'<code class="ticket">([^<]+)</code>', page.text)
    assert uri
    ticket = re.search(r"ticket=([\w-]+)", unescape(uri.group(1)))
    assert ticket
    key = ECKey.generate_key("P-256", private=True)
    body = {"ticket": ticket.group(1), "jwk": key.as_dict(private=False), "name": "Pixel 8",
            "webpush": Subscriber(service).subscription()}  # fmt: skip
    token = device_token(key, key.thumbprint(), op.url)
    enrolled = requests.post(f"{op.url}/mfa/push/enroll", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    check = {"action": "check", "ticket": hidden_inputs(page.text)["ticket"]}
    done = form_post(browser, f"{HOME}/push", page.text, **check)
    assert done.status_code == 200 and "push" in kinds(done.text)
    return key.thumbprint()


def every_kind(op: Any, gateway: str, service: PushService) -> tuple[Any, str]:
    """A user holding one factor of each kind (two phones); (user, push device id)."""
    bind_sender(op, gateway)
    user, browser, _, _ = signed_in_with_totp(op)
    handle = user.user_id.encode()
    assert add_key(browser, SoftAuthenticator(user_handle=handle), "passkey",
                   attachment="platform").status_code == 200  # fmt: skip
    assert add_key(browser, SoftAuthenticator(user_handle=handle), "key").status_code == 200
    device = add_web_push_device(op, browser, service)
    add_phone(browser, FIRST, FIRST)
    page = add_phone(browser, SECOND, SECOND)
    assert sorted(kinds(page)) == sorted(ORDER[:-1])  # factors of one second: any order
    return user, device


def web_push_subscriptions(op: Any, device_id: str) -> int:
    from idp.extensions import db
    from idp.mfa.webpush_models import WebPushSubscription

    with op.app.app_context():
        count = db.session.query(WebPushSubscription).filter_by(device_id=device_id).count()
        db.session.rollback()
    return count


def test_idp_mfa_list_and_reset_cover_every_kind(
    op: Any, gateway: str, service: PushService
) -> None:
    user, device = every_kind(op, gateway, service)
    listed = idp(op, "mfa", "list", user.email)
    rows = listed["methods"]
    assert sorted(r["kind"] for r in rows) == sorted(ORDER) and rows[-1]["kind"] == "recovery"
    assert listed["user_id"] == user.user_id
    by_kind = {r["kind"]: r for r in rows}
    assert by_kind["push"]["model"] == "Pixel 8" and by_kind["push"]["web_push"] is True
    assert by_kind["key"]["model"] == "Security key (USB)"
    assert by_kind["passkey"]["model"] == "Built into a device"
    assert {r["phone_number"] for r in rows if r["kind"] == "phone"} == {FIRST, SECOND}
    assert by_kind["totp"]["last_used_at"] is not None  # the login's MFA step used it
    assert by_kind["recovery"]["codes_left"] == 10 and listed["recovery_codes_left"] == 10
    assert all(r["created_at"] > 0 and r["confirmed"] for r in rows)
    # the same list by user id, as text: one line per factor with its model and dates
    text = idp(op, "mfa", "list", user.user_id, json_out=False)
    assert len(text.strip().splitlines()) == len(ORDER)
    assert "Pixel 8, Web Push" in text and "10 left" in text and "last used never" in text

    phones = idp(op, "mfa", "reset", user.email, "--kind", "phone")
    assert phones["removed"] == 2 and {f["kind"] for f in phones["factors"]} == {"phone"}
    push_id = by_kind["push"]["id"]
    assert idp(op, "mfa", "reset", user.email, "--factor", push_id)["removed"] == 1
    assert web_push_subscriptions(op, device) == 0  # the subscription went with its device
    left = idp(op, "mfa", "list", "--email", user.email)["methods"]
    assert sorted(r["kind"] for r in left) == ["key", "passkey", "recovery", "totp"]  # no companion
    assert idp(op, "mfa", "reset", user.email, "--factor", "recovery-code")["removed"] == 1
    assert idp(op, "mfa", "list", user.email)["recovery_codes_left"] == 0
    assert audit_types(op, user.user_id).count("mfa.removed") == 4
    assert idp(op, "mfa", "reset", user.user_id)["removed"] == 3
    assert idp(op, "mfa", "list", user.email)["methods"] == []


def test_management_api_lists_and_deletes_every_kind(
    op: Any, gateway: str, service: PushService
) -> None:
    user, device = every_kind(op, gateway, service)
    mgmt = Mgmt(op, grant(op, ["read:users", "update:users"]), ["read:users", "update:users"],
                [])  # fmt: skip
    path = f"/users/{user.user_id}/authentication-methods"
    listed = mgmt.call("GET", path)
    assert listed.status_code == 200, listed.text
    methods = listed.json()
    assert sorted(m["type"] for m in methods) == sorted(TYPES)
    by_type = {m["type"]: m for m in methods}
    push = by_type["push-notification"]
    assert push["name"] == "Pixel 8" and push["confirmed"] is True
    assert push["created_at"].endswith("Z") and push["enrolled_at"] == push["created_at"]
    assert by_type["totp"]["last_auth_at"] is not None and push["last_auth_at"] is None
    assert {m["phone_number"] for m in methods if m["type"] == "phone"} == {FIRST, SECOND}
    assert by_type["phone"]["preferred_authentication_method"] == "sms"
    assert mgmt.call("GET", f"{path}/{push['id']}").json() == push

    assert mgmt.call("DELETE", f"{path}/{push['id']}").status_code == 204
    assert web_push_subscriptions(op, device) == 0
    gone = mgmt.call("GET", f"{path}/{push['id']}")
    assert gone.status_code == 404 and "no authentication method" in gone.text
    assert mgmt.call("DELETE", f"{path}/{push['id']}").status_code == 404
    assert mgmt.call("DELETE", f"{path}/recovery-code").status_code == 204
    left = sorted(m["type"] for m in mgmt.call("GET", path).json())
    assert left == sorted(t for t in TYPES if t not in ("push-notification", "recovery-code"))
    # another user's method is not this user's
    other, _, _, _ = signed_in_with_totp(op)
    theirs = mgmt.call("GET", f"/users/{other.user_id}/authentication-methods").json()
    assert mgmt.call("DELETE", f"{path}/{theirs[0]['id']}").status_code == 404
    # reading needs read:users, deleting update:users
    reader = Mgmt(op, grant(op, ["read:users"]), ["read:users"], [])
    assert reader.call("DELETE", f"{path}/{methods[0]['id']}").status_code == 403
    assert mgmt.call("DELETE", path).status_code == 204
    assert mgmt.call("GET", path).json() == []
    assert audit_types(op, user.user_id).count("mfa.removed") == 2 + len(TYPES) - 2
    assert mgmt.call("GET", "/users/auth0|nobody/authentication-methods").status_code == 404
