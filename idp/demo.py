"""``idp demo``: seed a demo application, API and user once, and print them (``make run``)."""

from __future__ import annotations

import secrets

import click
from sqlalchemy import select

from idp.cli import Ctx, pass_ctx

DEMO_EMAIL = "demo@example.com"
DEMO_API = "https://api.example.com"
DEMO_REDIRECT = "http://localhost:8080/callback"


@click.command()
@pass_ctx
def demo(ctx: Ctx) -> None:
    """Create the demo app, API and user if the instance has none yet."""
    from idp.extensions import services
    from idp.identity import service as identity
    from idp.identity.models import User
    from idp.oauth import service as oauth

    with ctx.session() as s:
        if s.scalar(select(User).where(User.email == DEMO_EMAIL)) is not None:
            ctx.emit({"seeded": False}, "demo data already present (see the first `make run`)")
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
            ]
        ),
    )
