"""A small real upstream that says whatever a test tells it to: discovery, JWKS, token,
userinfo and profile endpoints served by the standard library's HTTP server on 127.0.0.1 in a
thread. The attack tests use it to hand idp forged ID tokens (unknown key, ``alg: none``,
HS256 keyed with the public key, expired...), slow answers and huge ones. It is an upstream
(idp talks to it over HTTP), not a stand-in for any idp code.

    with rogue_upstream() as rogue:
        rogue.id_token = rogue.sign(nonce=kept["nonce"], exp=0)   # what /token hands out
        rogue.metadata["authorization_response_iss_parameter_supported"] = False
        rogue.delay["/token"] = 10.0          # answer late (the test's timeout is shorter)
        rogue.payload["/token"] = b"x" * ...  # answer this body instead
        rogue.hits["/jwks"]                   # how often a path was asked for
        rogue.requests[-1]                    # (method, path, headers, form) of the last one
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.connections.upstream import discovery

CLIENT_ID = "rogue-client"
CLIENT_SECRET = "rogue-secret-0123456789"


@dataclass
class Rogue:
    issuer: str
    key: RSAKey
    kid: str
    metadata: dict[str, Any]
    jwks: list[dict[str, Any]]
    id_token: str | None = None
    token_extra: dict[str, Any] = field(default_factory=dict)
    userinfo: dict[str, Any] | None = None
    profiles: dict[str, Any] = field(default_factory=dict)  # path -> JSON answer
    # A test's own answer for a path: (status, content type, body).
    answers: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    token_answer: Callable[[dict[str, str], dict[str, str]], tuple[int, str, bytes]] | None = None
    delay: dict[str, float] = field(default_factory=dict)
    payload: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.issuer + path

    def options(self, **extra: Any) -> dict[str, Any]:
        """Options of an ``oidc`` connection to this upstream (client_secret_basic; userinfo
        off unless ``userinfo=True``, which answers :attr:`userinfo`)."""
        return {"issuer": self.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "scopes": ["openid", "email"], "userinfo": False, **extra}  # fmt: skip

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "rogue-user-1", "iat": now,
                  "exp": now + 600, "email": "mallory@example.com", "email_verified": True}  # fmt: skip
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, key: RSAKey | None = None, kid: str | None = None, **claims: Any) -> str:
        """An RS256 ID token with sensible claims, ``claims`` overriding them (None drops one);
        signed with this upstream's published key unless ``key`` is given."""
        header = {"alg": "RS256", "kid": kid or self.kid}
        return jwt.encode(header, self.claims(**claims), key or self.key, algorithms=["RS256"])


def _handler(rogue: Rogue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (size cap, timeout)
                self.wfile.write(body)

        def _json(self, value: Any, status: int = 200) -> None:
            self._send(status, "application/json", json.dumps(value).encode())

        def _answer(self, form: dict[str, str]) -> None:
            path = urlsplit(self.path).path
            headers = {k.lower(): v for k, v in self.headers.items()}
            rogue.hits[path] += 1
            rogue.requests.append((self.command, path, headers, form))
            if path in rogue.delay and rogue.stopping.wait(rogue.delay[path]):
                return
            if path in rogue.payload:
                return self._send(200, "application/json", rogue.payload[path])
            if path in rogue.answers:
                return self._send(*rogue.answers[path])
            if path == "/.well-known/openid-configuration":
                return self._json(rogue.metadata)
            if path == "/jwks":
                return self._json({"keys": rogue.jwks})
            if path == "/token" and rogue.token_answer is not None:
                return self._send(*rogue.token_answer(form, headers))
            if path == "/token":
                answer = {"access_token": "rogue-at-" + secrets.token_hex(8),
                          "token_type": "Bearer", "expires_in": 300, **rogue.token_extra}  # fmt: skip
                if rogue.id_token is not None:
                    answer["id_token"] = rogue.id_token
                return self._json(answer)
            if path == "/userinfo" and rogue.userinfo is not None:
                return self._json(rogue.userinfo)
            if path in rogue.profiles:
                return self._json(rogue.profiles[path])
            return self._json({"error": "not_found"}, 404)

        def do_GET(self) -> None:
            self._answer({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            self._answer(dict(parse_qsl(body, keep_blank_values=True)))

    return Handler


@contextmanager
def rogue_upstream() -> Iterator[Rogue]:
    """Serve a :class:`Rogue` on a free 127.0.0.1 port for the ``with`` block."""
    key = RSAKey.generate_key(2048)
    kid = "rogue-" + secrets.token_hex(4)
    public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": "RS256"}
    rogue = Rogue(issuer="", key=key, kid=kid, metadata={}, jwks=[public])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rogue))
    server.daemon_threads = True
    rogue.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    discovery.clear()  # a port used before may have had another upstream's keys cached
    rogue.metadata.update(
        issuer=rogue.issuer, authorization_endpoint=rogue.url("/authorize"),
        token_endpoint=rogue.url("/token"), jwks_uri=rogue.url("/jwks"),
        userinfo_endpoint=rogue.url("/userinfo"), response_types_supported=["code"],
        subject_types_supported=["public"], id_token_signing_alg_values_supported=["RS256"],
        authorization_response_iss_parameter_supported=True,
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rogue
    finally:
        rogue.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
