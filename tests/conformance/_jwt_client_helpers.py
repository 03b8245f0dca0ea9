"""Clients that authenticate with JWTs (RFC 7523) and a loopback server for their jwks_uri."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

from idp.core.errors import NotFoundError
from idp.extensions import db, services
from idp.oauth import client_auth
from idp.oauth import service as oauth

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
API = "https://api.jwt-auth.test"


def rsa_key(kid: str | None = None) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid or secrets.token_hex(4)})


def ec_key(kid: str | None = None) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid or secrets.token_hex(4)})


def jwks_of(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def register(op: Any, app_type: str = "m2m", **auth: Any) -> tuple[str, str | None]:
    """A client with ``client_auth.configure(**auth)``; an m2m one gets a grant on API.
    Returns (client_id, its secret)."""
    with op.app.app_context():
        created = oauth.create_client(
            db.session,
            services().box,
            name=f"jwt {secrets.token_hex(4)}",
            app_type=app_type,
            redirect_uris=[] if app_type == "m2m" else ["https://rp.test/cb"],
        )
        client = created.client
        new = client_auth.configure(client, services().box, secret=created.client_secret, **auth)
        db.session.flush()
        if app_type == "m2m":
            try:
                oauth.get_api(db.session, API)
            except NotFoundError:
                oauth.create_api(db.session, identifier=API, name="jwt api", scopes=["read"])
            oauth.create_client_grant(
                db.session, client_id=client.client_id, audience=API, scopes=["read"]
            )
        db.session.commit()
        services().clients.invalidate()
        return client.client_id, new or created.client_secret


def assertion(
    key: Key, client_id: str, aud: str, alg: str = "RS256", header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:  # fmt: skip
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
            "jti": secrets.token_urlsafe(16)}  # fmt: skip
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": alg, **({"kid": key.kid} if key.kid else {}), **(header or {})}
    return jwt.encode(head, body, key, algorithms=[alg])


def hmac_key(secret: str) -> OctKey:
    return OctKey.import_key(secret)


def token_form(signed: str, **extra: Any) -> dict[str, Any]:
    return {"grant_type": "client_credentials", "audience": API, "client_assertion_type":
            ASSERTION_TYPE, "client_assertion": signed, **extra}  # fmt: skip


class JwksServer:
    """Serves ``self.jwks`` at ``self.url`` on loopback and counts the fetches."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    srv = JwksServer()
    thread = threading.Thread(target=srv.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.server.shutdown()
        srv.server.server_close()
