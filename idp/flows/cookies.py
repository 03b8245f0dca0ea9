"""Names of the browser cookies. Under an https issuer they take the ``__Host-`` prefix, so a
sibling subdomain cannot plant or overwrite them (no login CSRF by cookie tossing, S-SS-06)."""

from __future__ import annotations

from flask import current_app
from werkzeug.wrappers import Response


def _name(base: str) -> str:
    https = str(current_app.config["ISSUER"]).startswith("https://")
    return f"__Host-{base}" if https else base


def session() -> str:
    return _name("idp_session")


def interaction() -> str:
    return _name("idp_interaction")


def secure() -> bool:
    return str(current_app.config["ISSUER"]).startswith("https://")


def put(resp: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Lax (top-level redirects from the apps must carry it), path /,
    Secure under https; no Domain, as the ``__Host-`` prefix requires."""
    resp.set_cookie(
        name, value, max_age=max_age, httponly=True, secure=secure(), samesite="Lax", path="/"
    )
