"""``idp demo``: the demo application, API and user, registered where the demo app listens.

The first run creates them and prints the user's password and the app's client secret once;
both go to ``<instance>/demo.json`` (mode 0600, beside ``secret.key``), the demo app's own
configuration, as an app's ``.env`` would hold its credentials. Every run (re)registers the demo
app's redirect URIs for the current app URL, so ``PORT=5077 make run`` after a run on 5000 still
logs in; a client whose secret is not in that file (an instance seeded by an older idp) gets a
new one. Nothing here is used by idp's own pages or endpoints.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core.crypto import random_token

DEMO_EMAIL = "demo@example.com"
DEMO_NAME = "Demo User"
DEMO_API = "https://api.example.com"
DEMO_API_SCOPE = "read:things"
DEMO_APP = "Demo web app"
SCOPE = f"openid email profile offline_access {DEMO_API_SCOPE}"
CREDENTIALS = "demo.json"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def default_app_url(issuer: str) -> str:
    """The next port on the issuer's loopback host (``http://localhost:5001`` otherwise)."""
    parts = urlsplit(issuer)
    host = parts.hostname or "localhost"
    if host not in _LOOPBACK or parts.port is None:
        return "http://localhost:5001"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{parts.port + 1}"


def credentials_path(instance: Path) -> Path:
    return instance / CREDENTIALS


def read_credentials(instance: Path) -> dict[str, Any]:
    """The demo app's configuration, or ``{}`` when there is none (or it is not JSON)."""
    try:
        data = json.loads(credentials_path(instance).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_credentials(instance: Path, data: dict[str, Any]) -> None:
    path = credentials_path(instance)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    path.chmod(0o600)


def remember_password(instance: Path, email: str, password: str) -> None:
    """Keep ``demo.json`` current when the demo user's password is set again."""
    stored = read_credentials(instance)
    if stored.get("email") == email:
        _write_credentials(instance, {**stored, "password": password})


def seed(session: Session, instance: Path, app_url: str) -> dict[str, Any]:
    """Create what is missing, point the app at ``app_url``; what ``idp demo`` prints."""
    from idp.extensions import services
    from idp.identity import service as identity
    from idp.identity.models import User
    from idp.oauth import service as oauth
    from idp.oauth.models import Client, ResourceServer

    svc = services()
    issuer = svc.config["ISSUER"]
    app_url = app_url.rstrip("/")
    stored = read_credentials(instance)
    shown: dict[str, str] = {}  # the secrets made now: printed this once

    if session.scalar(select(User).where(User.email == DEMO_EMAIL)) is None:
        shown["password"] = secrets.token_urlsafe(12)
        identity.create_user(
            session, svc.passwords, email=DEMO_EMAIL, password=shown["password"],
            email_verified=True,
        )  # fmt: skip
        session.flush()
        identity.update_profile(session, DEMO_EMAIL, {"name": DEMO_NAME, "given_name": "Demo"})
    if session.scalar(select(ResourceServer).where(ResourceServer.identifier == DEMO_API)) is None:
        oauth.create_api(session, identifier=DEMO_API, name="Demo API", scopes=[DEMO_API_SCOPE])

    redirect_uri, logout_uri = f"{app_url}/callback", f"{app_url}/"
    client = session.scalar(select(Client).where(Client.name == DEMO_APP))
    if client is None:
        created = oauth.create_client(
            session, svc.box, name=DEMO_APP, app_type="regular_web",
            redirect_uris=[redirect_uri], post_logout_redirect_uris=[logout_uri],
        )  # fmt: skip
        client, shown["client_secret"] = created.client, created.client_secret or ""
    else:
        client.redirect_uris = [oauth.validate_redirect_uri(redirect_uri, client.app_type)]
        client.post_logout_redirect_uris = [oauth.validate_redirect_uri(logout_uri, "regular_web")]
        secret = str(stored.get("client_secret") or "")
        if not (secret and hmac.compare_digest(svc.box.digest(secret), client.secret_digest or "")):
            shown["client_secret"] = random_token(32)
            client.secret_digest = svc.box.digest(shown["client_secret"])
    password = shown.get("password") or stored.get("password")

    config = {
        "issuer": issuer,
        "app_url": app_url,
        "client_id": client.client_id,
        "client_secret": shown.get("client_secret") or stored["client_secret"],
        "audience": DEMO_API,
        "scope": SCOPE,
        "email": DEMO_EMAIL,
        "password": password,
    }
    _write_credentials(instance, config)
    return {
        "seeded": "password" in shown,
        "issuer": issuer,
        "discovery": f"{issuer}/.well-known/openid-configuration",
        "app_url": app_url,
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "post_logout_redirect_uri": logout_uri,
        "api": DEMO_API,
        "email": DEMO_EMAIL,
        "credentials_file": str(credentials_path(instance)),
        "password_in_file": password is not None,
        **shown,
    }


def describe(data: dict[str, Any]) -> str:
    """``idp demo``'s text: where everything is; a secret only on the run that made it."""
    creds = data["credentials_file"]
    if "password" in data:
        password = f"{data['password']}   (also in {creds})"
    elif data["password_in_file"]:
        password = f"in {creds}"
    else:
        password = "unknown: idp users set-password --email " + data["email"]
    lines = [
        "Demo data (" + ("created" if data["seeded"] else "already there, kept") + "):",
        f"  idp (issuer)   {data['issuer']}",
        f"  discovery      {data['discovery']}",
        f"  demo app       {data['app_url']}   <- open this and press Log in",
        f"  user           {data['email']}",
        f"  password       {password}",
        f"  application    client_id={data['client_id']}",
        f"                 redirect_uri={data['redirect_uri']}",
    ]
    if "client_secret" in data:
        lines.append(f"                 client_secret={data['client_secret']}   (also in {creds})")
    lines.append(f"  API            {data['api']} (scope {DEMO_API_SCOPE})")
    if "password" not in data:
        lines.append(f"  forgot the password? idp users set-password --email {data['email']}")
    return "\n".join(lines)
