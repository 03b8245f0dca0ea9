"""The demo relying party: a real OpenID Connect client of idp (``idp demo-app``).

It is a separate program on its own origin (``make run`` starts it on the next port), as any
application of idp would be, and it knows only what an application knows: the issuer, its
client id and secret (``<instance>/demo.json``, written by ``idp demo``) and the public
endpoints that discovery announces. It uses Authlib's Flask client: the code flow with PKCE
S256 and a nonce, the RFC 9207 ``iss`` check, the ID token verified against the JWKS, userinfo,
the refresh grant and RP-initiated logout; its small protected API is :mod:`idp.demo.resource`.

Its outbound calls go through Authlib (requests), not :mod:`idp.core.http`: that guard is for
idp's server-side fetches of URLs tenants choose, and would refuse the plain-http loopback
issuer the demo talks to; this program calls only the issuer it was configured with, and itself.

The tokens stay on the server (a 4 KB cookie holds no ID token, access token and refresh token
together): the cookie, named apart from idp's (cookies ignore ports), carries a random key.
No JavaScript: every button is a form with a per-session CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from idp.demo import resource

COOKIE = "idp_demo_app"


class Logins:
    """The signed-in browsers' tokens and results, in memory (one process; a restart signs
    everyone out of the demo app, not out of idp)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str | None) -> dict[str, Any] | None:
        with self._lock:
            return self._data.get(key) if key else None

    def put(self, value: dict[str, Any]) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._data[key] = value
        return key

    def pop(self, key: str | None) -> dict[str, Any] | None:
        with self._lock:
            return self._data.pop(key, None) if key else None


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded only (shown on the page; the API verifies it)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {"(not a JWT)": True}
    return data if isinstance(data, dict) else {}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def create_demo_app(config: dict[str, Any]) -> Flask:
    """The demo app for ``config`` (``demo.json``: issuer, app_url, client_id, ...)."""
    app = Flask(__name__)
    app_url = str(config["app_url"]).rstrip("/")
    issuer = str(config["issuer"]).rstrip("/")
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # the callback is a top-level GET from idp's origin
        SESSION_COOKIE_SECURE=app_url.startswith("https://"),
    )
    app.add_template_filter(_pretty, "pretty")
    oauth = OAuth(app)
    client = oauth.register(
        "idp",
        client_id=config["client_id"],
        client_secret=config["client_secret"],
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": config["scope"], "code_challenge_method": "S256", "timeout": 10},
    )
    logins = Logins()
    resource.register(app, client, issuer, str(config["audience"]))
    issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))

    @app.before_request
    def _csrf() -> None:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
        if request.method == "POST":
            sent = request.form.get("csrf", "")
            if not hmac.compare_digest(sent, session["csrf"]):
                abort(400, "The form expired: go back and reload the page.")

    @app.after_request
    def _headers(resp: Response) -> Response:
        # form-action must admit idp: Chromium applies it to the redirect a form POST answers
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; "
            f"form-action 'self' {issuer_origin}; frame-ancestors 'none'; base-uri 'none'",
        )
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def page(template: str, status: int = 200, **ctx: Any) -> tuple[str, int]:
        return render_template(template, issuer=issuer, config=config, **ctx), status

    def failed(title: str, detail: str, status: int = 502) -> tuple[str, int]:
        return page("demo/error.html", status, title=title, detail=detail)

    @app.get("/")
    def index() -> Any:
        signed_out = False
        if request.args.get("state"):  # back from RP-initiated logout
            try:
                client.validate_logout_response()
                signed_out = True
            except OAuthError as exc:
                return failed("Logout answer refused", exc.description or exc.error, 400)
        login = logins.get(session.get("login"))
        return page("demo/index.html", login=login, signed_out=signed_out, jwt_claims=jwt_claims)

    @app.post("/login")
    def login() -> Any:
        try:
            return client.authorize_redirect(f"{app_url}/callback", audience=config["audience"])
        except (OSError, OAuthError, ValueError) as exc:
            return failed("idp is not reachable", f"{issuer}: {type(exc).__name__}: {exc}")

    @app.get("/callback")
    def callback() -> Any:
        try:
            metadata = client.load_server_metadata()
            # RFC 9207: the answer names its issuer; one from another issuer is refused
            iss = request.args.get("iss")
            if iss != metadata["issuer"] and (
                iss is not None or metadata.get("authorization_response_iss_parameter_supported")
            ):
                return failed("Login refused", "The answer's iss is not our issuer.", 400)
            token = dict(client.authorize_access_token())
            id_claims = dict(token.pop("userinfo", None) or {})
            userinfo = dict(client.userinfo(token=token))
        except OAuthError as exc:
            return failed("Login failed", f"{exc.error}: {exc.description or ''}", 400)
        except (OSError, ValueError) as exc:
            return failed("Login failed", f"{type(exc).__name__}: {exc}")
        logins.pop(session.get("login"))  # a second login replaces the first
        session["login"] = logins.put(
            {"token": token, "id_claims": id_claims, "userinfo": userinfo, "refreshes": 0,
             "api": None, "at": int(time.time())}
        )  # fmt: skip
        return redirect(url_for("index"), code=303)

    def current() -> dict[str, Any]:
        login = logins.get(session.get("login"))
        if login is None:
            abort(redirect(url_for("index"), code=303))
        return login

    @app.post("/refresh")
    def refresh() -> Any:
        login = current()
        try:
            fresh = client.fetch_access_token(
                grant_type="refresh_token", refresh_token=login["token"].get("refresh_token")
            )
            login["token"] = {**login["token"], **dict(fresh)}
            login["userinfo"] = dict(client.userinfo(token=login["token"]))
        except OAuthError as exc:
            return failed("Refresh refused", f"{exc.error}: {exc.description or ''}", 400)
        except (OSError, ValueError) as exc:
            return failed("Refresh failed", f"{type(exc).__name__}: {exc}")
        login["refreshes"] += 1
        return redirect(url_for("index"), code=303)

    @app.post("/call-api")
    def call_api() -> Any:
        login = current()
        try:
            answer = client.get(f"{app_url}{resource.PATH}", token=login["token"])
        except (OSError, OAuthError) as exc:
            return failed("The API call failed", f"{type(exc).__name__}: {exc}")
        try:
            body: Any = answer.json()
        except ValueError:
            body = answer.text
        login["api"] = {"status": answer.status_code, "body": body}
        return redirect(url_for("index") + "#api", code=303)

    @app.post("/logout")
    def logout() -> Any:
        login = logins.pop(session.pop("login", None))
        if login is None or "id_token" not in login["token"]:
            return redirect(url_for("index"), code=303)
        try:
            return client.logout_redirect(
                post_logout_redirect_uri=f"{app_url}/", id_token_hint=login["token"]["id_token"]
            )
        except (OSError, OAuthError, RuntimeError) as exc:
            return failed("idp is not reachable", f"{type(exc).__name__}: {exc}")

    return app
