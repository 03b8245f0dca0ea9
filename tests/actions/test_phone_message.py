"""send-phone-message: the chain delivers the code through api.http (the MFA factor uses it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from idp.actions.hooks import send_phone_message
from idp.extensions import db, services
from tests.conftest import build_app
from tests.factories import Factory

RECEIVED: list[dict[str, Any]] = []


class SmsGateway(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        RECEIVED.append({"auth": self.headers.get("Authorization"), **json.loads(body)})
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
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    flask_app = build_app(
        Path(tmp_path_factory.mktemp("instance")), 9, ACTIONS_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32"
    )
    yield flask_app
    with flask_app.app_context():
        services().actions.close()
        db.engine.dispose()


SENDER = """
def on_execute_send_phone_message(event, api):
    options = event.message_options
    answer = api.http.post(event.configuration.url, json={"to": options.recipient,
                           "body": options.text}, headers={"Authorization": "Bearer " + event.secrets.TOKEN})
    if answer.status != 201:
        raise RuntimeError("gateway said %s" % answer.status)
"""


def test_the_code_goes_out_through_the_bound_action(app: Any, gateway: str) -> None:
    factory = Factory(app)
    user = factory.gen_user()
    with app.app_context():
        unbound = send_phone_message(None, None, "+33600000000", "code 1", "1")
        assert not unbound.ran and unbound.denied is None  # nothing bound: nothing ran
    assert not RECEIVED
    factory.gen_action(
        "sms",
        "send-phone-message",
        SENDER,
        secrets={"TOKEN": "gw-token-123"},
        configuration={"url": f"http://{gateway}/messages"},
        allowed_hosts=[gateway],
    )
    with app.app_context():
        from idp.identity.models import User

        row = db.session.get(User, user.user_id)
        sent = send_phone_message(row, None, "+33600000000", "Your code is 123456", "123456")
        assert sent.ran and sent.denied is None
    assert RECEIVED[-1] == {
        "auth": "Bearer gw-token-123",
        "to": "+33600000000",
        "body": "Your code is 123456",
    }


def test_a_failed_delivery_is_reported(app: Any) -> None:
    factory = Factory(app)
    factory.clear_actions()
    factory.gen_action(
        "sms-down",
        "send-phone-message",
        SENDER,
        secrets={"TOKEN": "x"},
        configuration={"url": "http://127.0.0.1:9/messages"},
        allowed_hosts=["127.0.0.1:9"],
    )
    with app.app_context():
        outcome = send_phone_message(None, None, "+33600000000", "code", "1")
    assert outcome.ran and outcome.denied is not None
    assert outcome.denied.failed and "failed" in outcome.denied.description
