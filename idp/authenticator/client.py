"""The device side of push approval (idp/mfa/push.py has the protocol): a P-256 key in a local
JSON state file, ES256 device tokens (RFC 7519) and signed decisions (RFC 7515).

HTTP goes through idp.core.http.fetch, the project's one HTTP client: the ticket names the
server, and a QR code is untrusted input, so the same guard applies (only the ticket's host;
no private or loopback address unless the user allowed that network, e.g. a development
server on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from idp.core import http

TOKEN_LIFETIME = 60


class AuthenticatorError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Device:
    issuer: str
    device_id: str
    private_jwk: dict[str, Any]
    totp_secret: str
    networks: list[str] = field(default_factory=list)

    @property
    def key(self) -> ECKey:
        return ECKey.import_key(self.private_jwk)


def load(path: Path) -> Device:
    try:
        return Device(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise AuthenticatorError(f"not enrolled yet ({path} does not exist)") from None


def save(path: Path, device: Device) -> None:
    """The private key lives here: the file is created readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(device), fh, indent=2)


def device_token(key: ECKey, device_id: str, issuer: str, now: int | None = None) -> str:
    """A single-use ES256 token: iss = the device id, aud = the issuer, 60 s, a fresh jti."""
    iat = int(time.time()) if now is None else now
    claims = {"iss": device_id, "aud": issuer, "iat": iat, "exp": iat + TOKEN_LIFETIME,
              "jti": secrets.token_urlsafe(18)}  # fmt: skip
    return jwt.encode({"alg": "ES256", "typ": "JWT"}, claims, key, algorithms=["ES256"])


def sign_decision(key: ECKey, challenge: dict[str, Any], decision: str, number: int | None) -> str:
    payload = {"challenge": challenge["id"], "nonce": challenge["nonce"], "decision": decision,
               "number": number, "iat": int(time.time())}  # fmt: skip
    return jws.serialize_compact({"alg": "ES256"}, json.dumps(payload), key, algorithms=["ES256"])


def request(
    issuer: str,
    networks: list[str],
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> tuple[int, Any]:
    parts = urlsplit(issuer)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        answer = http.fetch(method, issuer + path, allowed_hosts=[f"{parts.hostname}:{port}"],
                            allowed_networks=http.parse_networks(networks), headers=headers,
                            body=body, timeout=timeout)  # fmt: skip
    except http.FetchRefused as exc:
        raise AuthenticatorError(str(exc)) from None
    try:
        data = json.loads(answer.body or b"null")
    except ValueError:
        data = None
    return answer.status, data


def _checked(status: int, data: Any, expected: int = 200) -> Any:
    if status != expected:
        detail = data.get("detail") if isinstance(data, dict) else None
        raise AuthenticatorError(f"the server said {status}: {detail or 'no detail'}", status)
    return data


def enrol(ticket_uri: str, path: Path, webhook: str | None = None,
          networks: list[str] | None = None, name: str | None = None) -> Device:  # fmt: skip
    """``idp-push://enroll?issuer=…&ticket=…``: make a key, register it, keep the TOTP seed.
    ``name`` is how the account page lists the device (the server keeps 64 characters)."""
    parts = urlsplit(ticket_uri)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if (
        parts.scheme != "idp-push"
        or parts.netloc != "enroll"
        or not {"issuer", "ticket"} <= set(query)
    ):
        raise AuthenticatorError("not an idp-push://enroll ticket")
    issuer = query["issuer"].rstrip("/")
    key = ECKey.generate_key("P-256")
    device_id = key.thumbprint()
    body = {"ticket": query["ticket"], "jwk": key.as_dict(private=False)}
    if webhook:
        body["webhook_url"] = webhook
    if name:
        body["name"] = name
    token = device_token(key, device_id, issuer)
    nets = list(networks or [])
    data = _checked(*request(issuer, nets, "POST", "/mfa/push/enroll", token,
                             json.dumps(body).encode()), expected=201)  # fmt: skip
    device = Device(issuer, data["device_id"], key.as_dict(private=True),
                    data["totp"]["secret"], nets)  # fmt: skip
    save(path, device)
    return device


def pending(device: Device, wait: int = 0) -> list[dict[str, Any]]:
    token = device_token(device.key, device.device_id, device.issuer)
    path = f"/mfa/push/pending?wait={int(wait)}"
    status, data = request(device.issuer, device.networks, "GET", path, token, timeout=wait + 10)
    return list(_checked(status, data)["challenges"])


def answer(device: Device, challenge_id: str, decision: str, number: int | None = None) -> str:
    """Approve or deny a pending challenge (its nonce comes from the pending list)."""
    challenge = next((c for c in pending(device) if c["id"] == challenge_id), None)
    if challenge is None:
        raise AuthenticatorError(f"no pending challenge {challenge_id}")
    signed = sign_decision(device.key, challenge, decision, number)
    return str(post_decision(device, challenge_id, signed)["status"])


def post_decision(device: Device, challenge_id: str, signed: str,
                  token: str | None = None) -> dict[str, Any]:  # fmt: skip
    token = token or device_token(device.key, device.device_id, device.issuer)
    status, data = request(device.issuer, device.networks, "POST",
                           f"/mfa/push/respond/{challenge_id}", token, signed.encode(),
                           content_type="application/jose")  # fmt: skip
    return dict(_checked(status, data))


def totp(device: Device) -> str:
    """The fallback code (RFC 6238, 30 s steps), for when push does not get through."""
    return str(pyotp.TOTP(device.totp_secret).now())
