"""Web Push transport for push approval: a login waiting on push sends the challenge to each of
the user's subscribed devices through their browser's push service.

* RFC 8030 (delivery): one POST per subscription to its push service ``endpoint`` with ``TTL``
  (the challenge's lifetime: a message delivered later is useless), ``Urgency: high`` (§5.3,
  a person is waiting) and a ``Topic`` (§5.4, a newer challenge replaces an undelivered one).
  201 is delivered; 404 or 410 mean the subscription is gone (§7.3) and it is removed; 429
  and 5xx are retried with backoff, ``Retry-After`` honoured up to a cap.
* RFC 8291 (encryption): the message is encrypted to the subscription's ``p256dh`` key and
  ``auth`` secret (``aes128gcm``, RFC 8188) by pywebpush: the push service reads nothing.
* RFC 8292 (VAPID): the instance's P-256 key, made by ``idp init`` and kept encrypted with the
  instance secret like the signing keys, signs a JWT per push service origin (``aud``), valid
  12 hours (§2: at most 24), ``sub`` a mailto: or https: contact.

Every request goes through the SSRF-guarded client: push service hosts are an allow-list
(``MFA_WEBPUSH_HOSTS``, the known services by default) checked at enrolment and again at
sending; private addresses only in ``MFA_WEBPUSH_ALLOW_NETWORKS`` (a test receiver).

The message carries what the notification shows (the app, the address, the numbers to pick
from), never the challenge's nonce: the device fetches that with its own device token, as the
polling transport does. Polling and the webhook wake-up stay as fallbacks.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app
from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.core import clock, http
from idp.core.crypto import SecretBox
from idp.i18n import gettext
from idp.mfa.push_models import PushChallenge, PushDevice
from idp.mfa.webpush_models import VapidKey, WebPushSubscription

log = logging.getLogger(__name__)

VAPID_ID = "vapid"
VAPID_LIFETIME = 12 * 3600  # RFC 8292 §2: no more than 24 hours
TOPIC = "login-approval"  # RFC 8030 §5.4: base64url alphabet, at most 32 characters
RETRY_DELAYS = (0.5, 1.0, 2.0)  # after the first try: four tries in all
RETRY_AFTER_CAP = 5.0
SEND_TIMEOUT = 5.0


class SubscriptionError(ValueError):
    """A subscription the device sent that cannot be used; the message is safe to show."""


# ------------------------------------------------------------------------------ VAPID key
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_vapid_key(session: Session, box: SecretBox) -> VapidKey:
    """The instance's VAPID key, made on first use (``idp init`` makes it; an instance
    initialised before Web Push gets it at its first push). Two workers making it at once:
    the second insert fails on the primary key and reads the first one's."""
    row = session.get(VapidKey, VAPID_ID)
    if row is not None:
        return row
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        with session.begin_nested():
            row = VapidKey(id=VAPID_ID, public_key=_b64url(public),
                           private_encrypted=box.encrypt(pem), created_at=clock.now())  # fmt: skip
            session.add(row)
    except IntegrityError:
        pass
    row = session.get(VapidKey, VAPID_ID)
    assert row is not None
    return row


def subject(config: Mapping[str, Any]) -> str:
    """RFC 8292 §2.1 ``sub``: the operator's contact (``MFA_WEBPUSH_SUBJECT``), else the
    issuer's https origin, else a mailto: at the issuer's host."""
    if config["MFA_WEBPUSH_SUBJECT"]:
        return str(config["MFA_WEBPUSH_SUBJECT"])
    parts = urlsplit(str(config["ISSUER"]))
    host = parts.hostname or "localhost"
    if parts.scheme == "https":
        return f"https://{host}"
    return f"mailto:postmaster@{host if '.' in host and not host[-1].isdigit() else 'localhost'}"


def _hosts(config: Mapping[str, Any]) -> list[str]:
    return [h.strip() for h in str(config["MFA_WEBPUSH_HOSTS"]).split(",") if h.strip()]


def web_enrolment(issuer: str, ticket_uri: str) -> dict[str, str]:
    """The web authenticator's address with the enrolment link in its fragment (a phone's
    camera opens it filled in; a fragment never reaches a server's logs), and its QR code:
    the ``web_uri`` and ``web_qr_svg`` of the mfa/_push_web.html partial."""
    import segno

    web = f"{issuer}/mfa/push/app/#" + urlencode({"ticket": ticket_uri})
    title = gettext("QR code of the web authenticator")
    svg = segno.make(web, error="m").svg_inline(scale=3, title=title)
    return {"web_uri": web, "web_qr_svg": svg}


# -------------------------------------------------------------------------- subscriptions
def _check_subscription(data: Any, config: Mapping[str, Any]) -> tuple[str, str, str]:
    """``PushSubscription.toJSON()``: an endpoint on an allowed push service, and the RFC 8291
    §3.1 keys (an uncompressed P-256 point, a 16-byte secret). Returns (endpoint, p256dh,
    auth)."""
    keys = data.get("keys") if isinstance(data, dict) else None
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise SubscriptionError("the push subscription needs an endpoint and keys")
    parts = urlsplit(endpoint)
    if len(endpoint) > 1024 or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SubscriptionError("the push subscription's endpoint is not a URL")
    if parts.username is not None or parts.password is not None:
        raise SubscriptionError("the push subscription's endpoint is not a URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SubscriptionError("the push subscription's endpoint is not a URL") from None
    if not http._host_allowed(parts.hostname.lower(), port, _hosts(config)):
        raise SubscriptionError("this push service is not allowed here (MFA_WEBPUSH_HOSTS)")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    try:
        raw_key = _unb64url(str(p256dh)) if isinstance(p256dh, str) else b""
        raw_auth = _unb64url(str(auth)) if isinstance(auth, str) else b""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
    except (ValueError, binascii.Error):
        raise SubscriptionError("the push subscription's keys are not P-256 and a secret") from None
    if len(raw_key) != 65 or len(raw_auth) != 16:
        raise SubscriptionError("the push subscription's keys are not P-256 and a secret")
    return endpoint, _b64url(raw_key), _b64url(raw_auth)


def subscribe(session: Session, device: PushDevice, data: Any, config: Mapping[str, Any]) -> None:
    """Record (or replace) the device's subscription; :class:`SubscriptionError` if unusable."""
    endpoint, p256dh, auth = _check_subscription(data, config)
    row = session.get(WebPushSubscription, device.id)
    if row is None:
        row = WebPushSubscription(device_id=device.id, user_id=device.user_id,
                                  created_at=clock.now())  # fmt: skip
        session.add(row)
    row.endpoint, row.p256dh, row.auth = endpoint, p256dh, auth


def unsubscribe(session: Session, device: PushDevice) -> bool:
    result = session.execute(
        delete(WebPushSubscription).where(WebPushSubscription.device_id == device.id),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


# ------------------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Delivery:
    """One message to send, in plain values: it is sent from a thread with no request."""

    device_id: str
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes
    ttl: int


def message(challenge: PushChallenge) -> dict[str, Any]:
    """What the service worker shows; the words in the login page's language."""
    app = challenge.app or gettext("an application")
    return {
        "type": "login-approval",
        "challenge": challenge.id,
        "numbers": list(challenge.choices),
        "app": challenge.app,
        "ip": challenge.ip,
        "expires_at": challenge.expires_at,
        "title": gettext("Sign-in request"),
        "body": gettext(
            "Sign in to {app} from {ip}? Open to pick the number shown on the sign-in page.",
            app=app,
            ip=challenge.ip or "?",
        ),
    }


def notify(session: Session, box: SecretBox, challenge: PushChallenge) -> int:
    """Send ``challenge`` to every subscribed device of its user, in the background (a slow
    push service must not hold the login page). Returns how many messages are on their way."""
    rows = list(
        session.scalars(
            select(WebPushSubscription).where(WebPushSubscription.user_id == challenge.user_id)
        )
    )
    if not rows:
        return 0
    pem = box.decrypt(ensure_vapid_key(session, box).private_encrypted)
    payload = json.dumps(message(challenge), separators=(",", ":")).encode()
    ttl = max(challenge.expires_at - clock.now(), 0)
    deliveries = [Delivery(r.device_id, r.endpoint, r.p256dh, r.auth, payload, ttl) for r in rows]
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    config = dict(app.config)

    def start(_session: Session) -> None:
        threading.Thread(target=_deliver_all, args=(app, config, pem, deliveries), daemon=True,
                         name="webpush").start()  # fmt: skip

    # once the challenge is committed: a phone woken at once must find it, and a login that
    # rolls back sends nothing
    event.listen(session, "after_commit", start, once=True)
    return len(deliveries)


def _deliver_all(app: Flask, config: Mapping[str, Any], pem: bytes, items: list[Delivery]) -> None:
    for item in items:
        try:
            outcome = send(config, pem, item)
        except Exception:  # a thread's error would only reach stderr: say which, go on
            log.exception("web push to a device failed")
            continue
        _record(app, item.device_id, outcome)


def _record(app: Flask, device_id: str, outcome: str) -> None:
    from idp.extensions import db

    with app.app_context(), db.transaction() as s:
        where = WebPushSubscription.device_id == device_id
        if outcome == "gone":
            s.execute(delete(WebPushSubscription).where(where),
                      execution_options={"synchronize_session": False})  # fmt: skip
        elif outcome == "sent":
            s.execute(update(WebPushSubscription).where(where).values(last_sent_at=clock.now()),
                      execution_options={"synchronize_session": False})  # fmt: skip


def request_for(
    config: Mapping[str, Any], pem: bytes, item: Delivery
) -> tuple[dict[str, str], bytes]:
    """The headers and encrypted body of one push message (RFC 8030 §5, 8291 §4, 8292 §3)."""
    from py_vapid import Vapid02
    from pywebpush import WebPusher

    subscription = {"endpoint": item.endpoint, "keys": {"p256dh": item.p256dh, "auth": item.auth}}
    body = WebPusher(subscription).encode(item.payload, "aes128gcm")["body"]
    parts = urlsplit(item.endpoint)
    origin = f"{parts.scheme}://{parts.netloc}"
    claims = {"aud": origin, "exp": clock.now() + VAPID_LIFETIME, "sub": subject(config)}
    vapid = Vapid02.from_pem(pem).sign(claims)
    headers = {
        "Authorization": vapid["Authorization"],
        "TTL": str(item.ttl),
        "Urgency": "high",
        "Topic": TOPIC,
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
    }
    return headers, bytes(body)


def send(config: Mapping[str, Any], pem: bytes, item: Delivery) -> str:
    """Deliver one message: ``sent``, ``gone`` (404/410: remove the subscription) or
    ``failed`` (refused by the guard, or still failing after the retries)."""
    networks = http.parse_networks(str(config["MFA_WEBPUSH_ALLOW_NETWORKS"]))
    host = urlsplit(item.endpoint).hostname or "?"
    for attempt in range(len(RETRY_DELAYS) + 1):
        # encrypted afresh each time: RFC 8291 wants a new salt and key per message
        headers, body = request_for(config, pem, item)
        try:
            answer = http.fetch("POST", item.endpoint, allowed_hosts=_hosts(config),
                                allowed_networks=networks, headers=headers, body=body,
                                timeout=SEND_TIMEOUT, max_body=8192)  # fmt: skip
        except http.FetchRefused as exc:
            log.warning("web push to %s refused: %s", host, exc)
            return "failed"
        if answer.status in (200, 201, 202):
            return "sent"
        if answer.status in (404, 410):
            log.info("web push subscription at %s is gone (%s): removed", host, answer.status)
            return "gone"
        if answer.status != 429 and answer.status < 500:
            log.warning("web push to %s answered %s", host, answer.status)
            return "failed"
        if attempt == len(RETRY_DELAYS):
            break
        time.sleep(_delay(answer.headers.get("retry-after"), RETRY_DELAYS[attempt]))
    log.warning("web push to %s still failing after %d tries", host, len(RETRY_DELAYS) + 1)
    return "failed"


def _delay(retry_after: str | None, default: float) -> float:
    """RFC 9110 §10.2.3 ``Retry-After`` in seconds (a date is treated as the default), capped:
    a challenge lives two minutes."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), RETRY_AFTER_CAP)
    return default
