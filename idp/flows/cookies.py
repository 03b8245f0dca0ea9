"""Names of the browser cookies. Under an https issuer they take the ``__Host-`` prefix, so a
sibling subdomain cannot plant or overwrite them (no login CSRF by cookie tossing, S-SS-06)."""

from __future__ import annotations

from flask import current_app


def _name(base: str) -> str:
    https = str(current_app.config["ISSUER"]).startswith("https://")
    return f"__Host-{base}" if https else base


def session() -> str:
    return _name("idp_session")


def interaction() -> str:
    return _name("idp_interaction")


def secure() -> bool:
    return str(current_app.config["ISSUER"]).startswith("https://")
