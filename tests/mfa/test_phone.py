"""The phone factor end to end: codes leave through a bound send-phone-message action to a
loopback SMS gateway; without a bound action the factor is unavailable and the pages say so.

Its own server (not the ``op`` fixture): actions may only reach loopback when the instance
allows private networks, as in tests/actions/test_phone_message.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from idp.extensions import db, services
from idp.mfa.phone import normalise_number
from tests.conftest import LiveServer, _free_server, build_app
from tests.helpers import Browser, hidden_inputs, jwt_parts
from tests.mfa.test_totp import follow, login, mfa_page, post, tokens_from

TEXTS: list[dict[str, Any]] = []

SENDER = """
def on_execute_send_phone_message(event, api):
    options = event.message_options
    answer = api.http.post(event.configuration.url, json={"to": options.recipient,
                           "body": options.text, "type": options.message_type})
    if answer.status != 201:
        raise RuntimeError("gateway said %s" % answer.status)
"""


class SmsGateway(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        TEXTS.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SmsGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sms_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = Path(tmp_path_factory.mktemp("instance"))
    app, server = _free_server(
        lambda port: build_app(tmp, port, ACTIONS_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32")
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield LiveServer(app, server)
    server.shutdown()
    with app.app_context():
        services().actions.close()
        db.engine.dispose()


def bind_sender(op: LiveServer, gateway: str) -> None:
    op.factory.clear_actions()
    op.factory.gen_action("sms", "send-phone-message", SENDER,
                          configuration={"url": f"http://{gateway}/messages"},
                          allowed_hosts=[gateway])  # fmt: skip


def last_code(to: str, since: int) -> tuple[str, str]:
    """(code, message type) of the newest message to ``to`` after the first ``since``."""
    for _ in range(100):
        mine = [t for t in TEXTS[since:] if t["to"] == to]
        if mine:
            found = re.search(r"\b(\d{6})\b", mine[-1]["body"])
            assert found, mine[-1]
            return found.group(1), mine[-1]["type"]
        time.sleep(0.05)
    raise AssertionError(f"no message to {to}")


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def enrol_phone(op: LiveServer, browser: Browser, page: str, number: str) -> str | None:
    """From the MFA enrolment page: the text-message link, the number, the code, continue."""
    link = re.search(r'href="(/interaction/[^"]+/mfa/phone)"', page)
    assert link, page[-800:]
    form = browser.http.get(op.url + link.group(1))
    assert form.status_code == 200 and 'type="tel"' in form.text
    url = op.url + link.group(1)
    fields = hidden_inputs(form.text)
    bad = browser.http.post(url, data={**fields, "action": "send", "number": "06 12"})
    assert bad.status_code == 400 and "country code" in bad.text
    since = len(TEXTS)
    sent = browser.http.post(url, data={**fields, "action": "send", "number": number,
                                        "message_type": "sms"})  # fmt: skip
    assert sent.status_code == 200 and "We texted" in sent.text, sent.text[:500]
    code, kind = last_code("+33612345678", since)
    assert kind == "sms"
    confirm = {**hidden_inputs(sent.text), "action": "confirm"}
    wrong = browser.http.post(url, data={**confirm, "code": other_than(code)})
    assert wrong.status_code == 401 and "not right" in wrong.text
    right = browser.http.post(url, data={**confirm, "code": code})
    assert right.status_code == 200 and len(re.findall(r"<li><code>", right.text)) == 10
    location, _ = follow(browser, browser.http.post(
        url, data={**hidden_inputs(right.text), "action": "continue"}, allow_redirects=False
    ))  # fmt: skip
    return location


def test_numbers_are_e164() -> None:
    assert normalise_number("+33 6 12-34.56 (78)") == "+33612345678"
    assert normalise_number("0033612345678") == "+33612345678"
    for bad in ("0612345678", "+0612345678", "+33 6", "+1234567890123456", "+33abc45678"):
        assert normalise_number(bad) is None


def test_without_a_bound_action_the_factor_is_unavailable(sms_op: LiveServer) -> None:
    op = sms_op
    op.factory.clear_actions()
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    page = mfa_page(result)
    assert "Text messages are not available." in page and "/mfa/phone" not in page
    uid = re.search(r'action="/interaction/([^/]+)/mfa"', page)
    assert uid
    direct = browser.http.get(f"{op.url}/interaction/{uid.group(1)}/mfa/phone")
    assert "not available" in direct.text and 'type="tel"' not in direct.text


def test_enrol_a_phone_then_sign_in_with_a_text(sms_op: LiveServer, gateway: str) -> None:
    op = sms_op
    bind_sender(op, gateway)
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, verifier = login(op, browser, client, user, acr_values="mfa")
    location = enrol_phone(op, browser, mfa_page(result), "+33 6 12 34 56 78")
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["pwd", "sms", "mfa"]

    # the challenge in another browser: send, a wrong code, a voice call, the right code
    other = Browser(op.url)
    result, verifier = login(op, other, client, user)
    page = mfa_page(result)
    assert "Text me a code" in page and "Code from your authenticator app" not in page
    since = len(TEXTS)
    sent = post(other, page, {"action": "send_sms"})
    assert sent.status_code == 200 and "We texted +33" in sent.text and "78 with" in sent.text
    code, _ = last_code("+33612345678", since)
    wrong = post(other, sent.text, {"action": "phone", "code": other_than(code)})
    assert wrong.status_code == 401 and "not right" in wrong.text
    since = len(TEXTS)
    called = post(other, wrong.text, {"action": "send_voice"})
    assert "We are calling" in called.text
    voice_code, kind = last_code("+33612345678", since)
    assert kind == "voice"
    stale = post(other, called.text, {"action": "phone", "code": code})
    assert stale.status_code == 401  # a new code replaces the earlier one
    location, _ = follow(other, post(other, stale.text, {"action": "phone", "code": voice_code}))
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["pwd", "sms", "mfa"]

    # the action is unbound later: the challenge says so and sends nothing
    op.factory.clear_actions()
    third = Browser(op.url)
    result, _ = login(op, third, client, user)
    page = mfa_page(result)
    assert "Text messages and calls are not available" in page and "Text me a code" not in page
    refused = post(third, page, {"action": "send_sms"})
    assert "not available" in refused.text


def test_sends_are_capped(sms_op: LiveServer, gateway: str) -> None:
    op = sms_op
    bind_sender(op, gateway)
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result, _ = login(op, browser, client, user, acr_values="mfa")
    link = re.search(r'href="(/interaction/[^"]+/mfa/phone)"', mfa_page(result))
    assert link
    url = op.url + link.group(1)
    fields = hidden_inputs(browser.http.get(url).text)
    answers = [
        browser.http.post(url, data={**fields, "action": "send", "number": "+33612345679"})
        for _ in range(6)
    ]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert "Too many codes" in answers[5].text
