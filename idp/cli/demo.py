"""``idp demo``: seed a demo application, API and user once, and print them (``make run``)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import click
from sqlalchemy import select

from idp.cli.context import Command, Ctx, pass_ctx

DEMO_EMAIL = "demo@example.com"
DEMO_API = "https://api.example.com"
DEMO_REDIRECT = "http://localhost:8080/callback"
DEMO_APP = "Demo web app"
# A fixed, public PKCE verifier: only for the printed demo URL, never for a real client.
DEMO_VERIFIER = "demo-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"


@click.command(cls=Command)
@pass_ctx
def demo(ctx: Ctx) -> None:
    """Create the demo app, API and user if the instance has none yet."""
    from idp.extensions import services
    from idp.identity import service as identity
    from idp.identity.models import User
    from idp.oauth import service as oauth
    from idp.oauth.models import Client

    with ctx.session() as s:
        if s.scalar(select(User).where(User.email == DEMO_EMAIL)) is not None:
            client = s.scalar(select(Client).where(Client.name == DEMO_APP))
            url = _login_url(services().config["ISSUER"], client.client_id) if client else ""
            ctx.emit(
                {"seeded": False, "login_url": url},
                "demo data already present (credentials were printed by the first run)"
                + (f"\n  try a login: {url}" if url else ""),
            )
            return
        svc = services()
        password = secrets.token_urlsafe(12)
        identity.create_user(
            s, svc.passwords, email=DEMO_EMAIL, password=password, email_verified=True
        )
        oauth.create_api(s, identifier=DEMO_API, name="Demo API", scopes=["read:things"])
        app = oauth.create_client(
            s,
            svc.box,
            name="Demo web app",
            app_type="regular_web",
            redirect_uris=[DEMO_REDIRECT],
            post_logout_redirect_uris=["http://localhost:8080/"],
        )
        data = {
            "seeded": True,
            "client_id": app.client.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": DEMO_REDIRECT,
            "api": DEMO_API,
            "email": DEMO_EMAIL,
            "password": password,
            "login_url": _login_url(svc.config["ISSUER"], app.client.client_id),
        }
    ctx.emit(
        data,
        lambda: "\n".join(
            [
                "Demo data (printed once; keep it):",
                f"  application  client_id={data['client_id']}",
                f"               client_secret={data['client_secret']}",
                f"               redirect_uri={DEMO_REDIRECT}",
                f"  API          {DEMO_API} (scope read:things)",
                f"  user         {DEMO_EMAIL} / {password}",
                f"  try a login  {data['login_url']}",
                "               (the browser ends at the redirect URI with ?code=...; redeem it",
                f"               with code_verifier={DEMO_VERIFIER})",
            ]
        ),
    )


def _login_url(issuer: str, client_id: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(DEMO_VERIFIER.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": DEMO_REDIRECT,
        "scope": "openid email profile offline_access",
        "state": "demo",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    return f"{issuer}/authorize?{urlencode(params)}"
