"""Push approval, the Guardian model on open parts (docs: TESTING-REAL-PARTS.md §4).

* Enrolment: a logged-in user gets a one-time ticket (``idp-push://enroll?issuer=…&ticket=…``,
  shown as a QR code). The device makes a P-256 key and posts the ticket and its public JWK;
  its id is the JWK thumbprint (RFC 7638 §3). It also gets a TOTP seed (RFC 6238), the
  fallback when push does not get through.
* Device calls carry a short-lived ES256 JWT (RFC 7519) signed by the device key: ``iss`` the
  device id, ``aud`` the issuer, ``exp`` at most 60 s after ``iat``, ``jti`` single-use.
* A login creates a challenge (120 s) with a number to match (against push fatigue: the user
  picks on the phone the number the login page shows). The device lists it (long poll) or is
  woken by a webhook, and answers with a JWS (RFC 7515) ``{challenge, nonce, decision, number,
  iat}``; nonce, expiry and single use are checked in one conditional update.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import request
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.core import clock, http
from idp.core.crypto import SecretBox, random_token, sha256_hex
from idp.flows.models import Interaction
from idp.i18n import N_
from idp.identity.models import User
from idp.mfa import describe, webpush
from idp.mfa.models import Factor
from idp.mfa.push_models import PushChallenge, PushDevice, PushTicket, PushTokenUse

TICKET_TTL = 600
CHALLENGE_TTL = 120
TOKEN_MAX_LIFETIME = 60
CLOCK_SKEW = 30
POLL_MAX_SECONDS = 20
ALG = ["ES256"]  # RFC 7518 §3.4; nothing else is accepted from a device


class PushError(Exception):
    """A refused device call; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------- enrolment
def issue_ticket(session: Session, box: SecretBox, user_id: str, issuer: str) -> tuple[str, str]:
    """A fresh ticket; returns (ticket, enrolment URI). Earlier unused tickets stop working."""
    session.execute(
        delete(PushTicket).where(PushTicket.user_id == user_id, PushTicket.used_at.is_(None))
    )
    ticket = random_token(24)
    now = clock.now()
    session.add(PushTicket(digest=box.digest(ticket), user_id=user_id, created_at=now,
                           expires_at=now + TICKET_TTL))  # fmt: skip
    return ticket, ticket_uri(issuer, ticket)


def ticket_uri(issuer: str, ticket: str) -> str:
    return "idp-push://enroll?" + urlencode({"issuer": issuer, "ticket": ticket})


def ticket_device(session: Session, box: SecretBox, ticket: str) -> str | None:
    """The device that used this ticket, once one has."""
    row = session.get(PushTicket, box.digest(ticket))
    return row.device_id if row is not None else None


def _public_key(data: Any) -> ECKey:
    if not isinstance(data, dict) or data.get("kty") != "EC" or data.get("crv") != "P-256":
        raise PushError(400, "the key must be a P-256 public JWK")
    if "d" in data:
        raise PushError(400, "send the public key only")
    try:
        return ECKey.import_key({k: data[k] for k in ("kty", "crv", "x", "y")})
    except (JoseError, KeyError, ValueError):
        raise PushError(400, "the key is not a valid P-256 JWK") from None


def enrol(
    session: Session, box: SecretBox, body: Mapping[str, Any], token: str, config: Mapping[str, Any]
) -> tuple[PushDevice, str]:
    """Register the device: the ticket once, the key proven by the request's own device token
    (proof of possession), an optional webhook URL. Returns (device, TOTP seed)."""
    import pyotp

    key = _public_key(body.get("jwk"))
    device_id = key.thumbprint()
    _check_token(session, token, key, device_id, str(config["ISSUER"]))
    webhook = body.get("webhook_url") or None
    if webhook is not None:
        webhook = _check_webhook(str(webhook), config)
    now = clock.now()
    claimed = session.execute(
        update(PushTicket)
        .where(PushTicket.digest == box.digest(str(body.get("ticket", ""))[:64]),
               PushTicket.used_at.is_(None), PushTicket.expires_at > now)
        .values(used_at=now, device_id=device_id),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if getattr(claimed, "rowcount", 0) != 1:
        raise PushError(400, "the ticket is unknown, used or expired")
    if session.get(PushDevice, device_id) is not None:
        raise PushError(409, "this key is already enrolled")
    # the ticket just claimed, by its own digest: an earlier ticket of a re-enrolled key could
    # name another user
    ticket = session.get(PushTicket, box.digest(str(body.get("ticket", ""))[:64]))
    assert ticket is not None
    if describe.at_cap(session, ticket.user_id, "push"):
        raise PushError(409, "this account has as many push devices as allowed")
    # the device's own name for itself ("Pixel 8"), shown on the account page
    model = body.get("name") if isinstance(body.get("name"), str) else None
    data = {"device_id": device_id, **({"model": model.strip()[:64]} if model else {})}
    factor = Factor(id="fac_" + random_token(12), user_id=ticket.user_id, kind="push",
                    name=N_("Push device"), data=data, confirmed=True,
                    created_at=now)  # fmt: skip
    seed = pyotp.random_base32(32)
    fallback = Factor(id="fac_" + random_token(12), user_id=ticket.user_id, kind="totp",
                      name=N_("Push device (code)"), secret=box.encrypt(seed.encode()),
                      data={"device_id": device_id}, confirmed=True, created_at=now)  # fmt: skip
    device = PushDevice(id=device_id, factor_id=factor.id, user_id=ticket.user_id,
                        jwk=key.as_dict(private=False), webhook_url=webhook,
                        created_at=now)  # fmt: skip
    session.add_all([factor, fallback])
    session.flush()
    session.add(device)
    return device, seed


def _check_webhook(url: str, config: Mapping[str, Any]) -> str:
    hosts = [h.strip() for h in str(config["MFA_PUSH_WEBHOOK_HOSTS"]).split(",") if h.strip()]
    parts = urlsplit(url)
    if not hosts or len(url) > 512 or parts.scheme not in {"http", "https"}:
        raise PushError(400, "webhooks are not allowed here (MFA_PUSH_WEBHOOK_HOSTS)")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port out of range or not a number
        raise PushError(400, "the webhook URL is malformed") from None
    if not http._host_allowed(host, port, hosts):
        raise PushError(400, "this webhook host is not allowed (MFA_PUSH_WEBHOOK_HOSTS)")
    return url


# ------------------------------------------------------------------------ device tokens
def _check_token(session: Session, token: str, key: ECKey, device_id: str, issuer: str) -> None:
    """RFC 7519 §7.2 validation plus our limits; the ``jti`` is recorded (single use)."""
    try:
        claims = jwt.decode(token, key, algorithms=ALG).claims
    except (JoseError, ValueError):
        raise PushError(401, "bad device token") from None
    now = clock.now()
    exp, iat = claims.get("exp"), claims.get("iat")
    if (
        claims.get("iss") != device_id
        or claims.get("aud") != issuer
        or not isinstance(exp, int)
        or not isinstance(iat, int)
        or exp <= now
        or iat > now + CLOCK_SKEW
        or exp - iat > TOKEN_MAX_LIFETIME
        or not isinstance(claims.get("jti"), str)
        or not 16 <= len(claims["jti"]) <= 128
    ):
        raise PushError(401, "bad device token")
    session.execute(delete(PushTokenUse).where(PushTokenUse.expires_at < now))
    try:
        with session.begin_nested():
            session.add(PushTokenUse(digest=sha256_hex(f"{device_id}:{claims['jti']}"),
                                     expires_at=exp))  # fmt: skip
    except IntegrityError:
        raise PushError(401, "device token replayed") from None


def authenticate(session: Session, authorization: str | None, issuer: str) -> PushDevice:
    """The enrolled device behind a ``Bearer`` device token, or 401 (RFC 6750 §3.1)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        raise PushError(401, "a device token is required")
    try:
        unverified = json.loads(_b64(token.split(".")[1]))
    except (ValueError, IndexError):
        raise PushError(401, "bad device token") from None
    device = session.get(PushDevice, str(unverified.get("iss", ""))[:64])
    if device is None:
        raise PushError(401, "unknown device")
    _check_token(session, token, ECKey.import_key(device.jwk), device.id, issuer)
    device.last_seen_at = clock.now()
    return device


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# --------------------------------------------------------------------------- challenges
def start(session: Session, user: User, state: dict[str, Any]) -> str:
    """Preparatory action of the MFA page ("Approve on your phone"): a new challenge, earlier
    ones of this login cancelled, every device with a webhook woken."""
    from idp.extensions import services

    svc = services()
    uid = str((request.view_args or {}).get("uid", ""))
    row = session.get(Interaction, uid)
    client = svc.clients.get(row.client_id) if row is not None else None
    from idp.flows.views import request_origin

    session.execute(
        update(PushChallenge)
        .where(PushChallenge.interaction_uid == uid, PushChallenge.status == "pending")
        .values(status="cancelled"),
        execution_options={"synchronize_session": False},
    )
    number = 10 + secrets.randbelow(90)
    choices = {number}
    while len(choices) < 3:
        choices.add(10 + secrets.randbelow(90))
    shuffled = sorted(choices, key=lambda _: secrets.randbelow(1000))
    now = clock.now()
    challenge = PushChallenge(
        id="pch_" + random_token(12), user_id=user.id, interaction_uid=uid,
        nonce=random_token(18), number=number, choices=shuffled,
        ip=request_origin().ip, app=client.name if client else None, status="pending",
        created_at=now, expires_at=now + CHALLENGE_TTL,
    )  # fmt: skip
    session.add(challenge)
    state["push"] = challenge.id
    state["push_number"] = number
    for device in session.scalars(select(PushDevice).where(PushDevice.user_id == user.id)):
        if device.webhook_url:
            notify(device.webhook_url, challenge.id, svc.config)
    webpush.notify(session, svc.box, challenge)
    return N_("We sent a request to your phone.")


def pending(session: Session, device: PushDevice) -> list[dict[str, Any]]:
    """What the device shows: who asks, from where, and the numbers to pick from."""
    rows = session.scalars(
        select(PushChallenge)
        .where(PushChallenge.user_id == device.user_id, PushChallenge.status == "pending",
               PushChallenge.expires_at > clock.now())
        .order_by(PushChallenge.created_at)
    )  # fmt: skip
    return [
        {"id": r.id, "nonce": r.nonce, "ip": r.ip, "app": r.app, "numbers": r.choices,
         "created_at": r.created_at, "expires_at": r.expires_at}
        for r in rows
    ]  # fmt: skip


def respond(session: Session, device: PushDevice, challenge_id: str, signed: str) -> str:
    """Verify the device's signed decision and record it once (a conditional update: of two
    answers exactly one lands; a late or repeated one is 409)."""
    try:
        payload = jws.deserialize_compact(signed.strip(), ECKey.import_key(device.jwk),
                                          algorithms=ALG).payload  # fmt: skip
        answer = json.loads(payload)
    except (JoseError, ValueError):
        raise PushError(400, "the decision is not signed by this device") from None
    now = clock.now()
    iat = answer.get("iat") if isinstance(answer, dict) else None
    if (
        not isinstance(answer, dict)
        or answer.get("challenge") != challenge_id
        or answer.get("decision") not in {"approve", "deny"}
        or not isinstance(iat, int)
        or abs(now - iat) > TOKEN_MAX_LIFETIME
    ):
        raise PushError(400, "malformed decision")
    challenge = session.get(PushChallenge, challenge_id[:40])
    if challenge is None or challenge.user_id != device.user_id:
        raise PushError(404, "no such challenge")
    if answer["decision"] == "deny":
        status = "denied"
    else:
        status = "approved" if answer.get("number") == challenge.number else "wrong_number"
    landed = session.execute(
        update(PushChallenge)
        .where(PushChallenge.id == challenge.id, PushChallenge.status == "pending",
               PushChallenge.expires_at > now,
               PushChallenge.nonce == str(answer.get("nonce", ""))[:64])
        .values(status=status, device_id=device.id, responded_at=now),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if getattr(landed, "rowcount", 0) != 1:
        raise PushError(409, "this challenge is answered, expired, or the nonce is wrong")
    return status


def outcome(session: Session, challenge_id: str, user_id: str) -> str:
    """The login page's view of its challenge. An approval is consumed here (approved → used,
    once); a pending one past its expiry becomes ``expired`` for good."""
    challenge = session.get(PushChallenge, challenge_id)
    if challenge is None or challenge.user_id != user_id:
        return "expired"
    session.refresh(challenge)
    now = clock.now()
    if challenge.status == "pending" and challenge.expires_at <= now:
        _move(session, challenge.id, "pending", "expired")
        return "expired"
    if challenge.status == "approved":
        return "approved" if _move(session, challenge.id, "approved", "used") else "expired"
    return challenge.status


def _move(session: Session, challenge_id: str, old: str, new: str) -> bool:
    result = session.execute(
        update(PushChallenge)
        .where(PushChallenge.id == challenge_id, PushChallenge.status == old)
        .values(status=new),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# --------------------------------------------------------------------------- transport
def notify(url: str, challenge_id: str, config: Mapping[str, Any]) -> None:
    """Wake the device through its webhook (SSRF-guarded, in the background: a slow receiver
    must not hold the login page). The body carries no secret: the device still has to fetch
    the challenge with its own token. Web Push is in webpush.py."""
    hosts = [h.strip() for h in str(config["MFA_PUSH_WEBHOOK_HOSTS"]).split(",") if h.strip()]
    networks = http.parse_networks(str(config["MFA_PUSH_WEBHOOK_ALLOW_NETWORKS"]))
    body = json.dumps({"type": "login-approval", "challenge": challenge_id}).encode()

    def send() -> None:
        with contextlib.suppress(http.FetchRefused):  # polling works without the wake-up
            http.fetch("POST", url, allowed_hosts=hosts, allowed_networks=networks, body=body,
                       headers={"Content-Type": "application/json"}, timeout=3.0)  # fmt: skip

    threading.Thread(target=send, daemon=True, name="push-webhook").start()


# ------------------------------------------------------------------ the factor registry
def offered(session: Session, user: User, factors: list[Factor]) -> bool:
    return any(f.kind == "push" for f in factors)


PREPARE: dict[str, Callable[[Session, User, dict[str, Any]], str]] = {"push_start": start}


def verify(s: Session, box: SecretBox, user: User, factors: list[Factor],
           form: Mapping[str, str], state: dict[str, Any]) -> bool:  # fmt: skip
    """A posted "check" on the main MFA page: passes only on a fresh approval."""
    return bool(state.get("push")) and outcome(s, str(state["push"]), user.id) == "approved"
