"""Signing in to the console: the console is an OpenID Connect client of idp itself
(``idp-console``, built in, never stored: an operator cannot delete or weaken it), as
Keycloak's admin console is of its master realm.

``/admin/login`` sends the browser to ``/authorize`` with PKCE (RFC 7636), a nonce, and
``acr_values`` asking for multi-factor (OIDC Core §3.1.2.1), so that the login pipeline,
its shields, its MFA step and its session make the decision; ``/admin/callback`` redeems the
code at ``/oauth/token`` in-process and accepts the ID token only with ``mfa`` in ``amr``
(RFC 8176) and for a user holding the admin role. The console's own cookie then lasts while
it is used: ``CONSOLE_IDLE_SECONDS`` without a request end it, ``CONSOLE_MAX_SECONDS`` after the
login too, and so do the end of the idp session it came from, the role's removal, a block.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.console import service
from idp.console.internal import dispatch
from idp.core import clock
from idp.core.crypto import SecretBox
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.models import LoginSession
from idp.identity.models import User
from idp.mfa.policy import MFA_ACR
from idp.oauth.clients import ClientInfo

CLIENT_ID = "idp-console"
LOGIN_SECONDS = 600
PATH = "/admin"


def session_cookie() -> str:
    """Under an https issuer ``__Secure-``: a sibling subdomain cannot plant it (the
    ``__Host-`` prefix would need ``Path=/``; the console's cookies stay under /admin)."""
    return ("__Secure-" if cookies.secure() else "") + "idp_console"


def login_cookie() -> str:
    return ("__Secure-" if cookies.secure() else "") + "idp_console_login"


def console_clients(issuer: str, box: SecretBox) -> dict[str, ClientInfo]:
    """The console's client: public (PKCE), code flow only, MFA always, the database
    connection (an admin is a user of this tenant with a password and a second factor)."""
    return {
        CLIENT_ID: ClientInfo(
            client_id=CLIENT_ID, name="idp admin console", app_type="spa",
            token_endpoint_auth_method="none",  # noqa: S106 - a method's name
            redirect_uris=(f"{issuer}{PATH}/callback",),
            post_logout_redirect_uris=(f"{issuer}{PATH}/",),
            grant_types=("authorization_code",), first_party=True, secret_digest=None,
            box=box, mfa_policy="always", connections=("database",),
        )
    }  # fmt: skip


@dataclass(frozen=True)
class Admin:
    """The signed-in admin; ``principal`` is what the management API is told."""

    user_id: str
    email: str
    sid: str
    since: int

    @property
    def principal(self) -> dict[str, Any]:
        return {"client_id": CLIENT_ID, "sub": self.user_id, "admin": self.email,
                "admin_id": self.user_id, "scope": ""}  # fmt: skip


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _cookie(resp: Response, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(name, value, max_age=max_age, path=PATH, secure=cookies.secure(),
                    httponly=True, samesite="Lax")  # fmt: skip


def reauth_seconds() -> int:
    """``max_age`` of the console's sign-in (OIDC Core §3.1.2.1): an idp session whose login
    is older asks the password and the second factor again."""
    return int(current_app.config["CONSOLE_REAUTH_SECONDS"])


def begin_login(next_path: str = PATH + "/") -> Response:
    """The redirect to ``/authorize`` and the cookie binding it to this browser."""
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    issuer = services().issuer.issuer
    query = urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "scope": "openid email",
        "redirect_uri": f"{issuer}{PATH}/callback", "state": state, "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
        "acr_values": MFA_ACR, "max_age": str(reauth_seconds()),
    })  # fmt: skip
    resp = Response(status=303, headers={"Location": f"{issuer}/authorize?{query}",
                                         "Cache-Control": "no-store"})  # fmt: skip
    safe_next = next_path if next_path.startswith(PATH + "/") else PATH + "/"
    value = _serializer("idp-console-login").dumps([state, nonce, verifier, safe_next])
    _cookie(resp, login_cookie(), value, LOGIN_SECONDS)
    return resp


class Refused(Exception):
    """A console login that ends on a page saying why (``status``, ``title``, ``text``)."""

    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


def finish_login() -> tuple[Admin, str]:
    """The callback: the admin and where to go. Raises :class:`Refused`."""
    try:
        state, nonce, verifier, next_path = _serializer("idp-console-login").loads(
            request.cookies.get(login_cookie(), ""), max_age=LOGIN_SECONDS
        )
    except (BadSignature, ValueError):
        raise Refused(400, "Sign-in expired", "Open the console again to sign in.") from None
    if not secrets.compare_digest(request.args.get("state", ""), state):
        raise Refused(400, "Sign-in expired", "Open the console again to sign in.")
    if request.args.get("error"):
        reason = request.args.get("error_description") or request.args["error"]
        raise Refused(403, "Sign-in refused", reason[:300])
    issuer = services().issuer.issuer
    answer = dispatch("POST", "/oauth/token", form={
        "grant_type": "authorization_code", "code": request.args.get("code", ""),
        "redirect_uri": f"{issuer}{PATH}/callback", "client_id": CLIENT_ID,
        "code_verifier": verifier,
    })  # fmt: skip
    if not answer.ok or not isinstance(answer.data, dict):
        raise Refused(400, "Sign-in failed", answer.message)
    claims = _id_token_claims(str(answer.data.get("id_token", "")), nonce)
    if "mfa" not in (claims.get("amr") or []):
        raise Refused(403, "A second factor is needed",
                      "The console needs a login with a second factor. Enrol one at "
                      "/account/mfa, then open the console again.")  # fmt: skip
    user = db.session.get(User, str(claims["sub"]))
    if user is None or user.blocked or not service.is_admin(db.session, user.id):
        raise Refused(403, "Not an admin",
                      "This account may not use the console. An admin can give it the role "
                      "(idp admins add --email ...).")  # fmt: skip
    return Admin(user.id, user.email, str(claims.get("sid", "")), clock.now()), next_path


def _id_token_claims(token: str, nonce: str) -> dict[str, Any]:
    """OIDC Core §3.1.3.7, for a token this process has just been handed by its own token
    endpoint: our signature, issuer, audience, time, nonce, and an ``auth_time`` within the
    ``max_age`` asked (§3.1.2.1)."""
    try:
        _header, claims = services().keys.verify(token)
    except ValueError:
        raise Refused(400, "Sign-in failed", "The ID token is not valid.") from None
    aud = claims.get("aud")
    fine = (
        claims.get("iss") == services().issuer.issuer
        and CLIENT_ID in (aud if isinstance(aud, list) else [aud])
        and isinstance(claims.get("exp"), int) and claims["exp"] > clock.now()
        and isinstance(claims.get("nonce"), str)
        and secrets.compare_digest(claims["nonce"], nonce)
        and isinstance(claims.get("sub"), str)
        and isinstance(claims.get("auth_time"), int)
        and clock.now() - claims["auth_time"] <= reauth_seconds() + 60
    )  # fmt: skip
    if not fine:
        raise Refused(400, "Sign-in failed", "The ID token is not valid.")
    return claims


def start_session(resp: Response, admin: Admin) -> None:
    resp.delete_cookie(login_cookie(), path=PATH)
    _write(resp, admin)


def _write(resp: Response, admin: Admin) -> None:
    value = _serializer("idp-console-session").dumps(
        [admin.user_id, admin.email, admin.sid, admin.since, clock.now()]
    )
    _cookie(resp, session_cookie(), value, int(current_app.config["CONSOLE_IDLE_SECONDS"]))


def current_admin() -> Admin | None:
    """The admin of this request, or None: the cookie is signed and was written within the
    idle time (it is rewritten at each request), the login is recent enough, the idp session
    it came from is still on, the user still an admin and not blocked."""
    cfg = current_app.config
    try:
        user_id, _email, sid, since, seen = _serializer("idp-console-session").loads(
            request.cookies.get(session_cookie(), "")
        )
    except (BadSignature, ValueError, TypeError):
        return None
    now = clock.now()
    if not isinstance(since, int) or now - since > int(cfg["CONSOLE_MAX_SECONDS"]):
        return None
    if not isinstance(seen, int) or now - seen > int(cfg["CONSOLE_IDLE_SECONDS"]):
        return None
    live = db.session.scalar(select(LoginSession).where(LoginSession.sid == sid))
    if live is None or live.ended_at is not None or live.expires_at <= now:
        return None
    if live.user_id != user_id or not service.is_admin(db.session, user_id):
        return None
    user = db.session.get(User, user_id)
    if user is None or user.blocked:
        return None
    return Admin(user_id, user.email, str(sid), since)  # the email now, not at sign-in


def refresh(resp: Response, admin: Admin) -> None:
    """Each request of a signed-in admin restarts the idle time."""
    _write(resp, admin)


def end(resp: Response) -> None:
    """Signing out of the console ends the idp session it came from too (and its
    session-bound refresh tokens): the cookie's value alone would otherwise stay good until
    idle, and the next console visit would sign in again without a password."""
    admin = current_admin()
    if admin is not None:
        flows.end_sessions(db.session, admin.user_id, admin.sid)
        db.session.commit()
    resp.delete_cookie(session_cookie(), path=PATH)


def forget_login(resp: Response) -> None:
    resp.delete_cookie(login_cookie(), path=PATH)
