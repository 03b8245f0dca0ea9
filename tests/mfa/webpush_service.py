"""A stand-in Web Push service on loopback, and a subscriber that holds the keys.

The service records every message (RFC 8030 §5) and answers what the test scripted for the
endpoint (201 by default); the subscriber decrypts a message with its own ECDH key and auth
secret (RFC 8291, ``aes128gcm``, through http_ece) and checks the VAPID header (RFC 8292 §3):
the ES256 JWT verifies with the ``k`` key, its ``aud`` is the service's origin, ``exp`` at most
24 hours ahead, ``sub`` a mailto: or https: contact.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Message:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    port: int = 0
    received: list[Message] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        """The next answers to a POST on ``path``; 201 once they are used up."""
        self.script[path] = list(answers)

    def wait(self, count: int, path: str | None = None, seconds: float = 15) -> list[Message]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [m for m in self.received if path is None or m.path == path]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"the push service got {len(self.received)} message(s)")


@contextmanager
def push_service() -> Iterator[PushService]:
    service = PushService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answers = service.script.get(self.path) or []
            status, headers = answers.pop(0) if answers else (201, {})
            service.received.append(Message(self.path, dict(self.headers.items()), body))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.port = server.server_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


class Subscriber:
    """What a browser's PushManager holds for one subscription."""

    def __init__(self, service: PushService) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.path = "/push/" + b64url(os.urandom(12))
        self.endpoint = service.origin + self.path

    def subscription(self) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}  # fmt: skip

    def decrypt(self, message: Message) -> dict[str, Any]:
        assert message.headers["Content-Encoding"] == "aes128gcm"
        plain = http_ece.decrypt(message.body, private_key=self.key, auth_secret=self.auth,
                                 version="aes128gcm")  # fmt: skip
        return dict(json.loads(plain))


def vapid_claims(message: Message, audience: str) -> tuple[dict[str, Any], str]:
    """The checked VAPID JWT's claims and the public key ``k`` (RFC 8292 §3.1, §3.2)."""
    found = re.fullmatch(r"vapid t=([\w.-]+),\s*k=([\w-]+)", message.headers["Authorization"])
    assert found, message.headers["Authorization"]
    token, k = found.groups()
    point = unb64url(k)
    assert len(point) == 65 and point[0] == 4
    key = ECKey.import_key({"kty": "EC", "crv": "P-256", "x": b64url(point[1:33]),
                            "y": b64url(point[33:])})  # fmt: skip
    decoded = jwt.decode(token, key, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
    claims = dict(decoded.claims)
    now = int(time.time())
    assert claims["aud"] == audience
    assert now < claims["exp"] <= now + 24 * 3600
    assert re.match(r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$", claims["sub"]), claims["sub"]
    return claims, k
