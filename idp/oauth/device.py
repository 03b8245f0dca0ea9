"""The Device Authorization Grant (RFC 8628), protocol and storage; the pages a person uses
(``/device``) are ``idp.flows.device``.

Authlib's ``rfc8628`` classes do the protocol (client authentication, the codes' shapes, the
error classes); these subclasses add idp's storage and rules:

- ``POST /oauth/device/code`` (§3.1, §3.2) answers a ``device_code`` (Authlib's 42 characters
  of [A-Za-z0-9], ~250 bits, stored as its SHA-256 only) and a ``user_code`` of 8 characters
  from the 20 consonants ``BCDFGHJKLMNPQRSTVWXZ`` (§6.1: no vowels so no words, no digits so
  no 0/O or 1/I), shown as ``XXXX-XXXX`` and stored as a keyed digest only. The client must be
  allowed the grant (``unauthorized_client`` otherwise); ``scope`` and ``audience`` are
  narrowed as at ``/authorize``.
- The token endpoint's grant (§3.4, §3.5): ``authorization_pending`` until the user decides,
  ``slow_down`` (and the code's interval +5 s from then on) for a poll sooner than the interval
  after the previous one, ``access_denied``, ``expired_token`` once ``expires_in`` has passed;
  an unknown device code, or one of another client, is ``invalid_grant`` (RFC 6749 §5.2).
  Approved, the code is redeemed by one conditional UPDATE in the token endpoint's transaction:
  of concurrent polls exactly one gets the tokens.

**The user code's entropy (§5.1).** 20^8 = 2.56e10 codes, 34.6 bits. With L codes live at
once, one guess hits one of them with probability L / 2.56e10. The shield of the verification
page (``idp.flows.device``) allows ``DEVICE_USER_CODE_IP_FAILURES`` wrong codes per IP and
``DEVICE_USER_CODE_GLOBAL_FAILURES`` wrong codes from everyone per
``DEVICE_USER_CODE_WINDOW_SECONDS`` (defaults 10, 500, 900 s); past the global figure the page
refuses every code until the window ends, so a botnet gets no more than one IP. At 500
guesses per 15 minutes against L = 1,000 codes live at every moment: 500 x 1,000 / 2.56e10 =
2e-5 per window, 0.68 hits in a year of continuous attack (35,040 windows); with L = 100,
one in 15 years. A hit approves a stranger's device for the attacker's own account, not the
reverse; the reverse, §5.4's remote phishing, is met by the page's confirm step (a code from a
link is shown to be checked against the device, never submitted by itself).

Off unless ``DEVICE_FLOW_ENABLED``: then the endpoint is a 404, the grant type is
``unsupported_grant_type`` and discovery says nothing of either.
"""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc8628.errors import (
    AuthorizationPendingError,
    ExpiredTokenError,
    SlowDownError,
)
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.extensions import Services, db, services
from idp.oauth.device_models import (
    APPROVED,
    DENIED,
    DEVICE_GRANT,
    PENDING,
    REDEEMED,
    DeviceAuthorization,
)
from idp.oauth.discovery import contributes
from idp.oauth.grants import USER_GRANT_AUTH_METHODS, AuthenticatedUser, _issue
from idp.oauth.models import ResourceServer
from idp.oauth.tokens import OIDC_SCOPES, GrantContext
from idp.stores import STORES

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # Authlib's create_string_user_code, §6.1
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP = 5  # §3.5: "the interval MUST be increased by 5 seconds"
# An expired authorization still answers expired_token this long, then is deleted.
KEEP_EXPIRED_SECONDS = 3600


def enabled(svc: Services | None = None) -> bool:
    return bool((svc or services()).config["DEVICE_FLOW_ENABLED"])


def normalise_user_code(raw: str) -> str | None:
    """What a person typed, as stored: case, dashes and spaces do not matter (§6.1); None if
    it cannot be a user code at all."""
    code = "".join(ch for ch in raw[:64].upper() if ch not in "- \t")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def shown(code: str) -> str:
    """``XXXX-XXXX``: two groups are easier to read out and type (§6.1)."""
    return f"{code[:4]}-{code[4:]}"


def user_code_digest(code: str) -> str:
    """Keyed (the instance secret): 34.6 bits would not survive a plain hash's brute force."""
    return services().box.digest("device-user-code:" + code)


def pending(session: Session, code: str) -> DeviceAuthorization | None:
    """The live, undecided authorization of a normalised user code."""
    row = session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.user_code_digest == user_code_digest(code)
        )
    )
    if row is None or row.status != PENDING or row.expires_at <= clock.now():
        return None
    return row


def approve(session: Session, device_id: str, who: AuthenticatedUser) -> bool:
    """§3.3: the user approved. One conditional UPDATE: a code that expired, or that someone
    else decided meanwhile, stays as it is (False)."""
    now = clock.now()
    result: Any = session.execute(
        update(DeviceAuthorization)
        .where(
            DeviceAuthorization.id == device_id,
            DeviceAuthorization.status == PENDING,
            DeviceAuthorization.expires_at > now,
        )
        .values(
            status=APPROVED,
            grant_id="grt_" + random_token(12),
            user_id=who.user.id,
            auth_time=who.auth_time,
            amr=list(who.amr),
            acr=who.acr,
            sid=who.sid,
            action_effects=who.action_effects,
            decided_at=now,
        ),
        execution_options={"synchronize_session": False},
    )
    return bool(result.rowcount == 1)


def deny(session: Session, device_id: str) -> None:
    """§3.5 ``access_denied`` from now on (a pending authorization only)."""
    session.execute(
        update(DeviceAuthorization)
        .where(DeviceAuthorization.id == device_id, DeviceAuthorization.status == PENDING)
        .values(status=DENIED, decided_at=clock.now()),
        execution_options={"synchronize_session": False},
    )


def _scope_and_audience(data: dict[str, Any]) -> tuple[str, str | None]:
    """As ``/authorize`` narrows them (``oauth.authorize.narrow_scope``, which imports the
    server, which imports this module): the OIDC scopes and the requested API's; an audience
    that is no registered API is ``invalid_request``."""
    requested = list(dict.fromkeys(str(data.get("scope") or "").split()))
    audience = str(data.get("audience") or data.get("resource") or "") or None
    allowed = set(OIDC_SCOPES)
    if audience is not None:
        api = db.session.scalar(select(ResourceServer).where(ResourceServer.identifier == audience))
        if api is None:
            raise InvalidRequestError("The audience is not a registered API.")
        allowed |= set(api.scopes)
    return " ".join(s for s in requested if s in allowed), audience


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    """§3.1-§3.2 over idp's storage."""

    CLIENT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def get_verification_uri(self) -> str:
        return services().issuer.issuer + "/device"

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_GRANT):
            raise UnauthorizedClientError("The client is not allowed the device_code grant.")
        scope, audience = _scope_and_audience(request.payload.data)
        cfg = services().config
        now = clock.now()
        device_code = self.generate_device_code()
        row = DeviceAuthorization(
            id="dev_" + random_token(12),
            device_code_hash=sha256_hex(device_code),
            client_id=client.client_id,
            scope=scope,
            audience=audience,
            status=PENDING,
            interval=int(cfg["DEVICE_POLL_INTERVAL"]),
            created_at=now,
            expires_at=now + int(cfg["DEVICE_CODE_TTL"]),
        )
        db.session.execute(
            delete(DeviceAuthorization).where(
                DeviceAuthorization.expires_at < now - KEEP_EXPIRED_SECONDS
            )
        )
        user_code = self._save(row)
        uri = self.get_verification_uri()
        data = {
            "device_code": device_code,
            "user_code": shown(user_code),
            "verification_uri": uri,
            "verification_uri_complete": add_params_to_uri(uri, [("user_code", shown(user_code))]),
            "expires_in": row.expires_at - now,
            "interval": row.interval,
        }
        return 200, data, default_json_headers

    def _save(self, row: DeviceAuthorization) -> str:
        """Insert with a fresh user code; a code live for another device (one in 2.56e10 per
        live code) is drawn again, the unique index deciding."""
        for _ in range(5):
            code = normalise_user_code(self.generate_user_code())
            assert code is not None
            row.user_code_digest = user_code_digest(code)
            try:
                with db.session.begin_nested():
                    db.session.add(row)
                return code
            except IntegrityError:
                db.session.expunge(row)
        raise RuntimeError("no free user code after 5 draws")


class DeviceGrant(DeviceCodeGrant):
    """§3.4-§3.5 over idp's storage; the tokens are the code grant's (``grants._issue``), a
    DPoP proof binding them as there (RFC 9449 §5)."""

    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    @classmethod
    def check_token_endpoint(cls, request: Any) -> bool:
        return enabled() and bool(super().check_token_endpoint(request))

    def validate_token_request(self) -> None:
        device_code = self.request.payload.data.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code'.")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(DEVICE_GRANT):
            raise UnauthorizedClientError("The client is not allowed the device_code grant.")
        row = self.query_device_credential(device_code)
        # RFC 6749 §5.2: unknown, or issued to another client, is invalid_grant alike
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The device code is invalid.")
        self.validate_device_credential(row)
        self.request.client = client
        self.request.credential = row

    def query_device_credential(self, device_code: str) -> DeviceAuthorization | None:
        if len(device_code) > 256:
            return None
        return db.session.scalar(
            select(DeviceAuthorization).where(
                DeviceAuthorization.device_code_hash == sha256_hex(device_code)
            )
        )

    def validate_device_credential(self, row: DeviceAuthorization) -> None:
        now = clock.now()
        if now >= row.expires_at:
            raise ExpiredTokenError()
        if row.status == DENIED:
            raise AccessDeniedError("The user denied the request.")
        if row.status == APPROVED and self._redeem(row, now):
            return
        if row.status in (APPROVED, REDEEMED):
            raise InvalidGrantError("The device code was already used.")
        if self.should_slow_down(row):
            raise SlowDownError()
        raise AuthorizationPendingError()

    def _redeem(self, row: DeviceAuthorization, now: int) -> bool:
        """approved -> redeemed, conditionally: one winner among concurrent polls."""
        result: Any = db.session.execute(
            update(DeviceAuthorization)
            .where(DeviceAuthorization.id == row.id, DeviceAuthorization.status == APPROVED)
            .values(status=REDEEMED, redeemed_at=now),
            execution_options={"synchronize_session": False},
        )
        return bool(result.rowcount == 1)

    def should_slow_down(self, row: DeviceAuthorization) -> bool:
        """A poll sooner than ``interval`` after the previous one: +5 s (§3.5). Decided by the
        UPDATE's own condition, so that concurrent polls are judged one after the other (the
        first poll is never early: it is not counted from the authorization request)."""
        now = clock.now()
        table = DeviceAuthorization
        early: Any = db.session.execute(
            update(table)
            .where(
                table.id == row.id,
                table.last_polled_at.is_not(None),
                table.last_polled_at + table.interval > now,
            )
            .values(interval=table.interval + SLOW_DOWN_STEP, last_polled_at=now),
            execution_options={"synchronize_session": False},
        )
        if early.rowcount == 1:
            return True
        db.session.execute(
            update(table).where(table.id == row.id).values(last_polled_at=now),
            execution_options={"synchronize_session": False},
        )
        return False

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        row: DeviceAuthorization = self.request.credential
        assert row.user_id is not None and row.grant_id is not None and row.auth_time is not None
        user = STORES.users.get(db.session, row.user_id)
        if user is None:
            raise InvalidGrantError("The user of this device code no longer exists.")
        if user.blocked:  # blocked between the approval and the redemption
            raise InvalidGrantError("user is blocked")
        ctx = GrantContext(
            grant_id=row.grant_id, client_id=row.client_id, user_id=row.user_id,
            scope=row.scope, audience=row.audience, auth_time=row.auth_time,
            amr=list(row.amr or []), acr=row.acr, sid=row.sid,
            action_effects=row.action_effects,
        )  # fmt: skip
        client = self.request.client
        refresh = client.check_grant_type("refresh_token") and (
            "offline_access" in row.scope.split()
        )
        token = _issue(ctx, user, row.scope, None, refresh, None, client)
        return 200, token, self.TOKEN_RESPONSE_HEADER


@contributes
def _metadata(document: dict[str, Any], svc: Services) -> None:
    """RFC 8628 §4: the endpoint and the grant type, only when the flow is on."""
    if not enabled(svc):
        return
    document["device_authorization_endpoint"] = f"{svc.issuer.issuer}/oauth/device/code"
    document["grant_types_supported"] = [*document["grant_types_supported"], DEVICE_GRANT]
