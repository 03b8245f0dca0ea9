"""The device authorization grant's protocol (RFC 8628 §3.1-§3.5, §4, §6.1), black-box
against a live server with the flow on; one test per spec error."""

from __future__ import annotations

import re
import threading
from typing import Any

import requests
from sqlalchemy import select

from idp.extensions import db
from idp.oauth.device_models import DeviceAuthorization
from tests.device.helpers import (
    DEVICE_GRANT,
    Person,
    allow_device,
    device_client,
    error_of,
    poll,
    start,
    started,
)
from tests.helpers import jwt_parts

WELL_KNOWN = "/.well-known/openid-configuration"


def test_discovery_names_the_endpoint_and_the_grant(dev):
    doc = requests.get(dev.url + WELL_KNOWN).json()
    assert doc["device_authorization_endpoint"] == dev.url + "/oauth/device/code"
    assert DEVICE_GRANT in doc["grant_types_supported"]


def test_the_answer_and_what_is_stored(dev):
    """§3.2's members; §6.1's user code; neither code stored in clear."""
    client = device_client(dev)
    resp = start(dev.url, client)
    assert resp.status_code == 200, resp.text
    assert "no-store" in resp.headers["Cache-Control"]
    body = resp.json()
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", body["user_code"])
    assert len(body["device_code"]) >= 40
    assert body["verification_uri"] == dev.url + "/device"
    assert body["verification_uri_complete"] == (dev.url + "/device?user_code=" + body["user_code"])
    assert body["expires_in"] == 600
    assert body["interval"] == 5
    with dev.app.app_context():
        rows = db.session.scalars(
            select(DeviceAuthorization).where(DeviceAuthorization.client_id == client.client_id)
        ).all()
        assert len(rows) == 1
        stored = " ".join(str(v) for v in vars(rows[0]).values())
    for secret in (body["device_code"], body["user_code"], body["user_code"].replace("-", "")):
        assert secret not in stored


def test_a_confidential_client_authenticates(dev):
    client = dev.factory.gen_client("regular_web")
    allow_device(dev, client)
    assert started(dev.url, client)["device_code"]
    wrong = requests.post(
        f"{dev.url}/oauth/device/code", data={"scope": "openid"}, auth=(client.client_id, "x")
    )
    assert wrong.status_code == 401 and error_of(wrong) == "invalid_client"


def test_a_public_client_must_name_itself(dev):
    resp = requests.post(f"{dev.url}/oauth/device/code", data={"scope": "openid"})
    assert resp.status_code == 401 and error_of(resp) == "invalid_client"


def test_a_client_not_allowed_the_grant_is_refused(dev):
    """§3.2 → RFC 6749 §5.2 unauthorized_client, at both endpoints."""
    client = dev.factory.gen_client("native")
    resp = start(dev.url, client)
    assert resp.status_code == 400 and error_of(resp) == "unauthorized_client"
    allowed = device_client(dev)
    code = started(dev.url, allowed)["device_code"]
    # a client without the grant presenting some code
    resp = poll(dev.url, client, code)
    assert resp.status_code == 400 and error_of(resp) == "unauthorized_client"


def test_an_unknown_audience_is_invalid_request(dev):
    resp = start(dev.url, device_client(dev), audience="https://nowhere.test")
    assert resp.status_code == 400 and error_of(resp) == "invalid_request"


def test_a_repeated_parameter_is_invalid_request(dev):
    client = device_client(dev)
    code = started(dev.url, client)["device_code"]
    resp = requests.post(
        f"{dev.url}/oauth/token",
        data=[("grant_type", DEVICE_GRANT), ("device_code", code), ("device_code", code),
              ("client_id", client.client_id)],
    )  # fmt: skip
    assert resp.status_code == 400 and error_of(resp) == "invalid_request"


def test_a_missing_device_code_is_invalid_request(dev):
    resp = poll(dev.url, device_client(dev), "")
    assert resp.status_code == 400 and error_of(resp) == "invalid_request"


def test_an_unknown_device_code_is_invalid_grant(dev):
    resp = poll(dev.url, device_client(dev), "x" * 42)
    assert resp.status_code == 400 and error_of(resp) == "invalid_grant"


def test_another_clients_device_code_is_invalid_grant(dev):
    code = started(dev.url, device_client(dev))["device_code"]
    resp = poll(dev.url, device_client(dev), code)
    assert resp.status_code == 400 and error_of(resp) == "invalid_grant"


def test_authorization_pending_then_slow_down_and_a_longer_interval(dev, clock):
    """§3.5: pending while the user has not decided; a poll within the interval is slow_down
    and adds 5 s to the interval from then on."""
    client = device_client(dev)
    code = started(dev.url, client)["device_code"]
    first = poll(dev.url, client, code)
    assert first.status_code == 400 and error_of(first) == "authorization_pending"
    assert "no-store" in first.headers["Cache-Control"]
    fast = poll(dev.url, client, code)
    assert fast.status_code == 400 and error_of(fast) == "slow_down"
    clock.advance(5)  # the old interval: too fast now (10 s)
    assert error_of(poll(dev.url, client, code)) == "slow_down"
    clock.advance(15)  # interval now 15 s after the second slow_down
    assert error_of(poll(dev.url, client, code)) == "authorization_pending"


def test_expired_token_after_expires_in(dev, clock):
    client = device_client(dev)
    code = started(dev.url, client)["device_code"]
    clock.advance(601)
    resp = poll(dev.url, client, code)
    assert resp.status_code == 400 and error_of(resp) == "expired_token"


def test_access_denied_when_the_user_denies(dev):
    client = device_client(dev)
    body = started(dev.url, client)
    user = dev.factory.gen_user()
    page = Person(dev.url).go(body["user_code"], user, decision="deny")
    assert page.status_code == 200 and "Device not connected" in page.text
    resp = poll(dev.url, client, body["device_code"])
    assert resp.status_code == 400 and error_of(resp) == "access_denied"


def _approved(dev: Any, client: Any, user: Any, **extra: Any) -> dict[str, Any]:
    body = started(dev.url, client, **extra)
    page = Person(dev.url).go(body["user_code"], user)
    assert page.status_code == 200 and "Device connected" in page.text, page.text[:800]
    return body


def test_approved_tokens_once(dev):
    """§3.5: the tokens, with the user in the ID token and a refresh token for
    offline_access; the device code then is spent (invalid_grant)."""
    client = device_client(dev)
    user = dev.factory.gen_user()
    body = _approved(dev, client, user)
    resp = poll(dev.url, client, body["device_code"])
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    _header, claims = jwt_parts(tokens["id_token"])
    assert claims["sub"] == user.user_id and claims["aud"] == client.client_id
    assert "nonce" not in claims and isinstance(claims["auth_time"], int)
    assert tokens["refresh_token"] and tokens["token_type"] == "Bearer"
    again = poll(dev.url, client, body["device_code"])
    assert again.status_code == 400 and error_of(again) == "invalid_grant"
    refreshed = requests.post(
        f"{dev.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
              "client_id": client.client_id},
    )  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text


def test_concurrent_redemption_has_one_winner(dev):
    """The device code is redeemed by one conditional UPDATE: of concurrent polls of an
    approved code, exactly one gets tokens."""
    client = device_client(dev)
    body = _approved(dev, client, dev.factory.gen_user())
    barrier = threading.Barrier(8)
    results: list[int] = []

    def redeem() -> None:
        barrier.wait()
        results.append(poll(dev.url, client, body["device_code"]).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [400] * 7, results


def test_an_api_audience_and_its_scope(dev):
    audience = dev.factory.gen_api(scopes=["read:things"])
    client = device_client(dev)
    body = _approved(dev, client, dev.factory.gen_user(), scope="openid read:things nope",
                     audience=audience)  # fmt: skip
    tokens = poll(dev.url, client, body["device_code"]).json()
    _header, claims = jwt_parts(tokens["access_token"])
    assert audience in claims["aud"] and claims["scope"] == "openid read:things"
    assert "refresh_token" not in tokens  # no offline_access asked


def test_a_device_code_is_bound_to_its_client_even_approved(dev):
    client = device_client(dev)
    body = _approved(dev, client, dev.factory.gen_user())
    resp = poll(dev.url, device_client(dev), body["device_code"])
    assert resp.status_code == 400 and error_of(resp) == "invalid_grant"
    assert poll(dev.url, client, body["device_code"]).status_code == 200


def test_off_by_default(op):
    """DEVICE_FLOW_ENABLED off: no endpoint, no grant, nothing in discovery."""
    doc = requests.get(op.url + WELL_KNOWN).json()
    assert "device_authorization_endpoint" not in doc
    assert DEVICE_GRANT not in doc["grant_types_supported"]
    client = op.factory.gen_client("native")
    allow_device(op, client)
    assert start(op.url, client).status_code == 404
    resp = poll(op.url, client, "x" * 42)
    assert resp.status_code == 400 and error_of(resp) == "unsupported_grant_type"
    assert requests.get(op.url + "/device").status_code == 404


def test_bad_input_is_never_a_500(dev):
    client = device_client(dev)
    url = f"{dev.url}/oauth/device/code"
    answers = [
        requests.post(url, json={"client_id": client.client_id}),
        requests.post(url, data={"client_id": client.client_id, "audience": "x" * 5000}),
        requests.post(url, data={"client_id": client.client_id, "scope": "\x00 \u2603 " * 300}),
        requests.post(url, data=[("client_id", client.client_id), ("client_id", "x")]),
        poll(dev.url, client, "\x00" * 5000),
        requests.get(f"{dev.url}/device", params={"user_code": '"><script>' * 50}),
        requests.get(f"{dev.url}/device/" + "x" * 3000),
    ]
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), statuses
    assert statuses[:5] == [400, 400, 200, 400, 400], statuses
    assert "<script>" not in answers[5].text
