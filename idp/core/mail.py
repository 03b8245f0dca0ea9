"""Outgoing email: SMTP when ``SMTP_HOST`` is set, otherwise (development) each message is
written to ``instance/outbox/`` and its text printed to the server log, so that `make run`
shows the verification and reset links. SMTP mode never logs a message body."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from idp.core import clock
from idp.core.crypto import random_token

log = logging.getLogger("idp.mail")


_MAX_PENDING = 200


class Mailer:
    _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="idp-mail")
    _pending = threading.BoundedSemaphore(_MAX_PENDING)

    def __init__(self, config: dict[str, Any], outbox: Path) -> None:
        self.host: str = config["SMTP_HOST"]
        self.port: int = config["SMTP_PORT"]
        self.sender: str = config["SMTP_FROM"]
        self.username: str = config["SMTP_USERNAME"]
        self.password: str = config["SMTP_PASSWORD"]
        self.starttls: bool = config["SMTP_STARTTLS"]
        self.outbox = outbox

    def send_later(self, to: str, subject: str, text: str) -> None:
        """Send in the background: a page's answer time must not reveal whether a mail went
        out (no account enumeration by timing), and a slow SMTP server must not stall it."""

        if not self._pending.acquire(blocking=False):
            # a flood must not grow memory without bound; the per-IP throttles stop most
            log.error("mail queue full (%d pending): a message to %s was dropped", _MAX_PENDING, to)
            return

        def job() -> None:
            try:
                self.send(to, subject, text)
            except (OSError, smtplib.SMTPException) as exc:
                log.error("mail to %s failed: %s", to, type(exc).__name__)
            finally:
                self._pending.release()

        self._pool.submit(job)

    def send(self, to: str, subject: str, text: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg["Message-ID"] = make_msgid(domain="idp")
        msg.set_content(text)
        if not self.host:
            self._to_outbox(msg, to, text)
            return
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(msg)

    def _to_outbox(self, msg: EmailMessage, to: str, text: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{clock.now()}-{random_token(6)}.eml"
        path.write_bytes(msg.as_bytes())
        # development only: no SMTP configured, so the operator reads the link here
        log.warning("mail to %s written to %s (no SMTP_HOST set):\n%s", to, path, text)
