"""Push approval over real HTTP, with the real ``idp-authenticator`` as the phone.

The authenticator runs as a subprocess (``python -m idp.authenticator``) for the user's paths
(enrol, list, approve, deny, totp); the attacks (another key, a replayed token or decision, an
unenrolled key) call its functions to build the forged messages.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc.jwk import ECKey

from idp.authenticator import client as device_client
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, hidden_inputs, jwt_parts
from tests.mfa.test_totp import follow, login, mfa_page, post, tokens_from


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """This module's server lets push webhooks reach a receiver on loopback."""
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"MFA_PUSH_WEBHOOK_HOSTS": "127.0.0.1",
                "MFA_PUSH_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
                "MFA_PUSH_LONG_POLL_SECONDS": 20}  # fmt: skip
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idp.authenticator", "--state", str(state), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def post_to(browser: Browser, page: str, path: str, fields: dict[str, str]) -> requests.Response:
    data = {"csrf_token": hidden_inputs(page)["csrf_token"], **fields}
    return browser.http.post(browser.base + path, data=data, allow_redirects=False)


def enrol_device(op: Any, tmp_path: Path, webhook: str | None = None) -> tuple[Any, Any, Path]:
    """First login: choose push on the enrolment page, enrol the authenticator from the ticket
    link, save the recovery codes, continue. Returns (client, user, state file)."""
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, verifier = login(op, browser, client, user, acr_values="mfa")
    link = re.search(r'href="(/interaction/[^"]+/mfa/push/enroll)"', mfa_page(result))
    assert link, result.page[:500]
    page = browser.http.get(op.url + link.group(1)).text
    ticket = re.search(r'<code class="ticket">([^<]+)</code>', page)
    assert ticket and "<svg" in page
    # the login's page posts back to itself; the interaction holds the ticket, not the form
    assert f'action="{link.group(1)}"' in page and 'name="ticket"' not in page
    uri = html.unescape(ticket.group(1))
    assert uri.startswith("idp-push://enroll?issuer=")
    state = tmp_path / "device.json"
    extra = ["--webhook", webhook] if webhook else []
    done = cli(state, "enrol", uri, "--allow-network", "127.0.0.0/8", *extra)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["device_id"] == json.loads(state.read_text())["device_id"]
    assert cli(state, "enrol", uri, "--allow-network", "127.0.0.0/8").returncode == 2  # once
    codes = post_to(browser, page, link.group(1), {"action": "check"})
    assert codes.status_code == 200 and "recovery codes" in codes.text
    location, _ = follow(browser, post_to(browser, codes.text, link.group(1),
                                          {"action": "continue"}))  # fmt: skip
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["pwd", "swk", "mfa"]
    return client, user, state


def start_push(op: Any, client: Any, user: Any) -> tuple[Browser, str, int, str]:
    """A later login: "Approve on your phone". Returns (browser, uid, number, verifier)."""
    browser = Browser(op.url)
    result, verifier = login(op, browser, client, user, acr_values="mfa")
    page = mfa_page(result)
    assert "Approve on your phone" in page
    waiting = post(browser, page, {"action": "push_start"})
    assert waiting.status_code == 200
    number = re.search(r'id="push-number"><strong>(\d+)</strong>', waiting.text)
    uid = re.search(r"/interaction/([^/]+)/mfa/push", waiting.text)
    assert number and uid, waiting.text[:800]
    assert 'http-equiv="refresh"' in waiting.text  # the page refreshes itself, no JavaScript
    return browser, uid.group(1), int(number.group(1)), verifier


def listed(state: Path) -> list[dict[str, Any]]:
    done = cli(state, "list")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def check(browser: Browser, uid: str) -> requests.Response:
    """What the meta refresh does."""
    return browser.http.get(f"{browser.base}/interaction/{uid}/mfa/push", allow_redirects=False)


def test_approve_with_the_matching_number(op: Any, tmp_path: Path) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser, uid, number, verifier = start_push(op, client, user)
    waiting = check(browser, uid)
    assert waiting.status_code == 303 and waiting.headers["Location"] == f"/interaction/{uid}/mfa"
    [challenge] = listed(state)
    assert number in challenge["numbers"] and len(challenge["numbers"]) == 3
    assert challenge["ip"] == "127.0.0.1" and challenge["app"]
    done = cli(state, "approve", challenge["id"], "--number", str(number))
    assert done.returncode == 0 and done.stdout.strip() == "approved", done.stderr
    location, _ = follow(browser, check(browser, uid))
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["pwd", "swk", "mfa"]
    assert listed(state) == []


def test_deny(op: Any, tmp_path: Path) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser, uid, _, _ = start_push(op, client, user)
    [challenge] = listed(state)
    assert cli(state, "deny", challenge["id"]).stdout.strip() == "denied"
    page = check(browser, uid)
    assert page.status_code == 401 and "denied on your phone" in page.text
    assert "Approve on your phone" in page.text  # may try again, or use a code


def test_wrong_number_fails_the_login(op: Any, tmp_path: Path) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser, uid, number, _ = start_push(op, client, user)
    [challenge] = listed(state)
    wrong = next(n for n in challenge["numbers"] if n != number)
    assert cli(state, "approve", challenge["id"], "--number", str(wrong)).stdout.strip() == (
        "wrong_number"
    )
    page = check(browser, uid)
    assert page.status_code == 401 and "did not match" in page.text


def test_time_out(op: Any, tmp_path: Path, clock: Any) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser, uid, number, _ = start_push(op, client, user)
    [challenge] = listed(state)
    clock.advance(121)
    page = check(browser, uid)
    assert page.status_code == 401 and "expired" in page.text
    clock.reset()  # back to the device's time: the challenge stays expired
    assert listed(state) == []
    device = device_client.load(state)
    signed = device_client.sign_decision(device.key, challenge, "approve", number)
    with pytest.raises(device_client.AuthenticatorError) as late:
        device_client.post_decision(device, challenge["id"], signed)
    assert late.value.status == 409


def test_decision_signed_by_another_key_is_refused(op: Any, tmp_path: Path) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser, uid, number, _ = start_push(op, client, user)
    [challenge] = listed(state)
    device = device_client.load(state)
    forged = device_client.sign_decision(ECKey.generate_key("P-256"), challenge, "approve", number)
    with pytest.raises(device_client.AuthenticatorError) as refused:
        device_client.post_decision(device, challenge["id"], forged)
    assert refused.value.status == 400
    assert check(browser, uid).status_code == 303  # still waiting
    assert cli(state, "approve", challenge["id"], "--number", str(number)).returncode == 0


def test_replayed_approval_is_refused(op: Any, tmp_path: Path) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser, uid, number, _ = start_push(op, client, user)
    [challenge] = listed(state)
    device = device_client.load(state)
    signed = device_client.sign_decision(device.key, challenge, "approve", number)
    assert device_client.post_decision(device, challenge["id"], signed)["status"] == "approved"
    with pytest.raises(device_client.AuthenticatorError) as replayed:
        device_client.post_decision(device, challenge["id"], signed)
    assert replayed.value.status == 409
    location, _ = follow(browser, check(browser, uid))
    assert location and "code=" in location


def test_replayed_device_token_is_refused(op: Any, tmp_path: Path) -> None:
    _, _, state = enrol_device(op, tmp_path)
    device = device_client.load(state)
    token = device_client.device_token(device.key, device.device_id, device.issuer)
    first = device_client.request(device.issuer, device.networks, "GET", "/mfa/push/pending",
                                  token)  # fmt: skip
    again = device_client.request(device.issuer, device.networks, "GET", "/mfa/push/pending",
                                  token)  # fmt: skip
    assert first[0] == 200 and again[0] == 401


def test_unenrolled_device_is_refused(op: Any) -> None:
    key = ECKey.generate_key("P-256")
    token = device_client.device_token(key, key.thumbprint(), op.url)
    status, body = device_client.request(op.url, ["127.0.0.0/8"], "GET", "/mfa/push/pending",
                                         token)  # fmt: skip
    assert status == 401 and body["detail"] == "unknown device"
    # a token for a real device id, signed by another key
    signed = device_client.device_token(key, "nobody", op.url)
    assert device_client.request(op.url, ["127.0.0.0/8"], "GET", "/mfa/push/pending",
                                 signed)[0] == 401  # fmt: skip


def test_falls_back_to_the_devices_code(op: Any, tmp_path: Path) -> None:
    client, user, state = enrol_device(op, tmp_path)
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    code = cli(state, "totp").stdout.strip()
    location, _ = follow(browser, post(browser, mfa_page(result), {"action": "totp", "code": code}))
    assert location and "code=" in location


def test_webhook_wakes_the_device_and_long_poll_answers(op: Any, tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        client, user, state = enrol_device(
            op, tmp_path, webhook=f"http://127.0.0.1:{hook.server_port}/wake"
        )
        polled: list[list[dict[str, Any]]] = []
        device = device_client.load(state)
        poller = threading.Thread(target=lambda: polled.append(device_client.pending(device, 15)))
        poller.start()
        start_push(op, client, user)
        poller.join(20)
        assert polled and len(polled[0]) == 1  # the long poll answered when the login began
        for _ in range(50):
            if received:
                break
            threading.Event().wait(0.1)
        assert received == [{"type": "login-approval", "challenge": polled[0][0]["id"]}]
    finally:
        hook.shutdown()
        hook.server_close()


def test_webhook_host_must_be_allowed(op: Any, tmp_path: Path) -> None:
    with pytest.raises(AssertionError):
        enrol_device(op, tmp_path, webhook="https://push.example.com/wake")
