"""A live server wired to a real SMTP server (aiosmtpd on loopback) that keeps every message."""

from __future__ import annotations

import email
import re
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from idp.extensions import db
from tests.conftest import LiveServer, _free_server, build_app
from tests.ports import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, to: str, subject_part: str, timeout: float = 5.0) -> email.message.Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.messages:
                if msg["To"] == to and subject_part in msg["Subject"]:
                    return msg
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to} about {subject_part!r}")

    def link(self, to: str, subject_part: str) -> str:
        body = self.wait_for(to, subject_part).get_payload(decode=True).decode()
        match = re.search(r"https?://\S+", body)
        assert match, body
        return match.group(0)

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="module")
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def mailing(tmp_path_factory, smtp):
    inbox, port = smtp
    tmp = tmp_path_factory.mktemp("mail")
    app, server = _free_server(
        lambda p: build_app(tmp, p, SMTP_HOST="127.0.0.1", SMTP_PORT=port, PASSWORD_MIN_SCORE=3)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live = LiveServer(app, server)
    live.inbox = inbox
    yield live
    server.shutdown()
    with app.app_context():
        db.engine.dispose()
