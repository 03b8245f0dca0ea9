"""Push approval over Web Push, server side end to end: a device enrols with a push
subscription, a login pushes the challenge through the SSRF-guarded client to a push service
on loopback, which decrypts it with the subscription's keys (RFC 8291) and checks the VAPID
JWT (RFC 8292); the device then answers with the signed decision idp-authenticator uses.
The page and its service worker in Chromium: test_webpush_browser.py."""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from joserfc.jwk import ECKey

from idp.authenticator import client as device_client
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, jwt_parts
from tests.mfa.test_push import check, post_to, start_push
from tests.mfa.test_totp import follow, login, mfa_page, tokens_from
from tests.mfa.webpush_service import PushService, Subscriber, push_service, vapid_claims

NETS = ["127.0.0.0/8"]


@pytest.fixture(scope="module")
def service() -> Iterator[PushService]:
    with push_service() as running:
        yield running


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, service: PushService) -> Iterator[LiveServer]:
    """Push services on loopback are allowed here, as the operator's switches say."""
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"MFA_WEBPUSH_HOSTS": f"127.0.0.1:{service.port}",
                "MFA_WEBPUSH_ALLOW_NETWORKS": "127.0.0.0/8"}  # fmt: skip
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


def ticket_for(op: Any) -> tuple[Any, Any, Browser, str, str]:
    """A first login's push enrolment page: (client, user, browser, page, its path, ticket)."""
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    link = re.search(r'href="(/interaction/[^"]+/mfa/push/enroll)"', mfa_page(result))
    assert link
    page = browser.http.get(op.url + link.group(1)).text
    uri = re.search(r'<code class="ticket">([^<]+)</code>', page)
    assert uri
    ticket = re.search(r"ticket=([\w-]+)", uri.group(1))
    assert ticket
    return client, user, browser, page, link.group(1), ticket.group(1)


def enrol_call(op: Any, key: ECKey, ticket: str, webpush: Any) -> tuple[int, Any]:
    body = {"ticket": ticket, "jwk": key.as_dict(private=False), "webpush": webpush}
    token = device_client.device_token(key, key.thumbprint(), op.url)
    return device_client.request(op.url, NETS, "POST", "/mfa/push/enroll", token,
                                 json.dumps(body).encode())  # fmt: skip


def enrol_web_device(op: Any, subscriber: Subscriber) -> tuple[Any, Any, device_client.Device]:
    """Enrol a device the way the web authenticator does, then finish the enrolling login."""
    client, user, browser, page, path, ticket = ticket_for(op)
    key = ECKey.generate_key("P-256")
    status, data = enrol_call(op, key, ticket, subscriber.subscription())
    assert status == 201, data
    codes = post_to(browser, page, path, {"action": "check"})
    assert codes.status_code == 200
    location, _ = follow(browser, post_to(browser, codes.text, path, {"action": "continue"}))
    assert location and "code=" in location
    device = device_client.Device(op.url, data["device_id"], key.as_dict(private=True),
                                  data["totp"]["secret"], NETS)  # fmt: skip
    return client, user, device


def subscriptions(op: Any, device_id: str) -> int:
    from idp.extensions import db
    from idp.mfa.webpush_models import WebPushSubscription

    with op.app.app_context():
        count = db.session.query(WebPushSubscription).filter_by(device_id=device_id).count()
        db.session.rollback()
    return count


def test_a_login_pushes_an_encrypted_challenge_and_the_signed_approval_completes_it(
    op: Any, service: PushService
) -> None:
    subscriber = Subscriber(service)
    client, user, device = enrol_web_device(op, subscriber)
    assert subscriptions(op, device.device_id) == 1
    browser, uid, number, verifier = start_push(op, client, user)
    [message] = service.wait(1, subscriber.path)
    _, k = vapid_claims(message, service.origin)
    assert k == op.app.test_client().get("/mfa/push/vapid").get_json()["public_key"]
    assert 0 < int(message.headers["TTL"]) <= 120  # RFC 8030 §5.2: the challenge's lifetime
    assert message.headers["Urgency"] == "high"  # RFC 8030 §5.3
    assert message.headers["Topic"] == "login-approval"  # RFC 8030 §5.4
    pushed = subscriber.decrypt(message)
    assert pushed["type"] == "login-approval" and number in pushed["numbers"]
    assert pushed["ip"] == "127.0.0.1" and pushed["title"] and str(pushed["ip"]) in pushed["body"]
    assert "nonce" not in pushed  # fetched with the device's own token
    [challenge] = device_client.pending(device)
    assert challenge["id"] == pushed["challenge"]
    signed = device_client.sign_decision(device.key, challenge, "approve", number)
    assert device_client.post_decision(device, challenge["id"], signed)["status"] == "approved"
    with pytest.raises(device_client.AuthenticatorError) as replayed:
        device_client.post_decision(device, challenge["id"], signed)
    assert replayed.value.status == 409
    location, _ = follow(browser, check(browser, uid))
    assert location and "code=" in location
    assert jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]["amr"] == [
        "pwd", "swk", "mfa"
    ]  # fmt: skip


def test_a_wrong_number_from_the_pushed_choices_fails_the_login(
    op: Any, service: PushService
) -> None:
    subscriber = Subscriber(service)
    client, user, device = enrol_web_device(op, subscriber)
    browser, uid, number, _ = start_push(op, client, user)
    pushed = subscriber.decrypt(service.wait(1, subscriber.path)[0])
    wrong = next(n for n in pushed["numbers"] if n != number)
    [challenge] = device_client.pending(device)
    signed = device_client.sign_decision(device.key, challenge, "approve", wrong)
    assert device_client.post_decision(device, challenge["id"], signed)["status"] == "wrong_number"
    page = check(browser, uid)
    assert page.status_code == 401 and "did not match" in page.text


def test_a_gone_subscription_is_removed_and_polling_still_works(
    op: Any, service: PushService
) -> None:
    subscriber = Subscriber(service)
    client, user, device = enrol_web_device(op, subscriber)
    service.answer(subscriber.path, (410, {}))
    start_push(op, client, user)
    service.wait(1, subscriber.path)
    for _ in range(100):  # the removal happens after the push service answered
        if subscriptions(op, device.device_id) == 0:
            break
        time.sleep(0.05)
    assert subscriptions(op, device.device_id) == 0
    assert len(device_client.pending(device)) == 1  # the polling fallback still sees it
    start_push(op, client, user)
    time.sleep(0.5)
    assert len([m for m in service.received if m.path == subscriber.path]) == 1  # no more


def test_5xx_and_429_are_retried_each_time_encrypted_afresh(op: Any, service: PushService) -> None:
    subscriber = Subscriber(service)
    client, user, device = enrol_web_device(op, subscriber)
    service.answer(subscriber.path, (503, {}), (429, {"Retry-After": "1"}))
    start_push(op, client, user)
    tries = service.wait(3, subscriber.path)
    assert len({m.body for m in tries}) == 3  # RFC 8291: a new salt and key per message
    assert [subscriber.decrypt(m)["challenge"] for m in tries].count(
        subscriber.decrypt(tries[0])["challenge"]
    ) == 3
    time.sleep(0.3)
    assert subscriptions(op, device.device_id) == 1  # a delivered message keeps it


def test_a_push_service_not_on_the_allow_list_is_refused_at_enrolment(
    op: Any, service: PushService
) -> None:
    _, _, _, _, _, ticket = ticket_for(op)
    key = ECKey.generate_key("P-256")
    elsewhere = Subscriber(service).subscription()
    elsewhere["endpoint"] = "https://push.example.com/send/abc"
    status, data = enrol_call(op, key, ticket, elsewhere)
    assert status == 400 and "MFA_WEBPUSH_HOSTS" in data["detail"]
    short = Subscriber(service).subscription()
    short["keys"]["auth"] = "AAAA"
    status, data = enrol_call(op, ECKey.generate_key("P-256"), ticket, short)
    assert status == 400 and "keys" in data["detail"]
    # nothing was kept: the ticket still enrols a device with a usable subscription
    status, data = enrol_call(op, key, ticket, Subscriber(service).subscription())
    assert status == 201, data


def test_a_device_replaces_and_drops_its_subscription(op: Any, service: PushService) -> None:
    first, second = Subscriber(service), Subscriber(service)
    client, user, device = enrol_web_device(op, first)

    def call(method: str, body: Any = None) -> int:
        token = device_client.device_token(device.key, device.device_id, device.issuer)
        data = json.dumps(body).encode() if body is not None else None
        return device_client.request(op.url, NETS, method, "/mfa/push/subscription", token,
                                     data)[0]  # fmt: skip

    assert call("PUT", {"endpoint": "https://push.example.com/x", "keys": {}}) == 400
    assert call("PUT", second.subscription()) == 204
    start_push(op, client, user)
    assert second.decrypt(service.wait(1, second.path)[0])["type"] == "login-approval"
    assert not [m for m in service.received if m.path == first.path]
    assert call("DELETE") == 204 and subscriptions(op, device.device_id) == 0


def test_the_guard_refuses_a_push_service_on_a_private_address(op: Any) -> None:
    """The operator allowed the host but not its network: nothing is sent."""
    from idp.mfa import webpush

    with op.app.app_context():
        from idp.extensions import db, services

        pem = services().box.decrypt(webpush.ensure_vapid_key(db.session, services().box)
                                     .private_encrypted)  # fmt: skip
        db.session.commit()
    config = {**op.app.config, "MFA_WEBPUSH_HOSTS": "127.0.0.1:9", "MFA_WEBPUSH_ALLOW_NETWORKS": ""}
    sub = Subscriber(PushService(port=9))
    keys = sub.subscription()["keys"]
    item = webpush.Delivery("dev", sub.endpoint, keys["p256dh"], keys["auth"], b"{}", 60)
    assert webpush.send(config, pem, item) == "failed"


def test_init_makes_the_vapid_key_once_and_show_prints_it(tmp_path: Path) -> None:
    env = {**os.environ, "IDP_INSTANCE": str(tmp_path / "instance")}
    env.pop("IDP_DATABASE_URL", None)

    def idp(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "idp", *args], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    idp("init")
    shown = json.loads(idp("--json", "mfa", "vapid", "show"))
    assert re.fullmatch(r"[\w-]{87}", shown["public_key"])  # 65 bytes, base64url
    assert shown["subject"].startswith(("mailto:", "https://"))
    idp("init")  # again: the key stays
    assert idp("mfa", "vapid", "show").strip() == shown["public_key"]
    db = sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")
    [(stored,)] = db.execute("select private_encrypted from mfa_vapid_keys").fetchall()
    db.close()
    assert b"PRIVATE KEY" not in bytes(stored)  # encrypted at rest with the instance secret


def test_the_account_page_offers_the_web_authenticator_with_the_link_in_its_fragment(
    op: Any, service: PushService
) -> None:
    from tests.mfa.test_account_factors import HOME, form_post
    from tests.mfa.test_account_mfa import signed_in_with_totp

    _, browser, _, _ = signed_in_with_totp(op)
    page = form_post(browser, f"{HOME}/push", browser.http.get(browser.base + HOME).text)
    shown = re.search(r'<code class="ticket">([^<]+)</code>', page.text)
    web = re.search(r'<a href="([^"]+)">', page.text.split('id="web-authenticator"')[1])
    assert shown and web and "<svg" in page.text.split('id="web-authenticator"')[1]
    address, _, fragment = html.unescape(web.group(1)).partition("#")
    assert address == f"{op.url}/mfa/push/app/"
    link = parse_qs(fragment)["ticket"][0]
    assert link == html.unescape(shown.group(1))
    subscriber = Subscriber(service)
    ticket = parse_qs(link.split("?", 1)[1])["ticket"][0]
    status, data = enrol_call(op, ECKey.generate_key("P-256"), ticket, subscriber.subscription())
    assert status == 201 and subscriptions(op, data["device_id"]) == 1
