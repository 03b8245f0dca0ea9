"""The hosted pages' branding from the tenant settings: the name, the logo, the accent colour,
the support address, and the Content-Security-Policy that admits the logo's host.

The pages read it through the ``brand`` template variable. The CSP is computed per settings
snapshot: a page records the CSP of the snapshot it was rendered with (``g.idp_csp``), so the
logo it shows and the ``img-src`` it is sent with always agree, whichever worker serves it and
whenever the logo changed. Responses that render no page keep the start-up CSP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g
from sqlalchemy.exc import SQLAlchemyError

from idp.tenant.settings import Snapshot, tenant

HTTPS_LOGO = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?/[^\s\"'<>]*")
"""A logo the API accepts: https only (its host joins the pages' CSP img-src), no quote or
angle bracket (it is written into an attribute) and, checked apart, no ``..``."""


def csp(logo_url: str) -> str:
    """Scripts only from us (WebAuthn needs one, idp/static/webauthn.js; never inline), no
    inline style, no framing; images from us (and the logo's https host)."""
    img = "'self' data:"
    if logo_url.startswith("https://"):
        parts = urlsplit(logo_url)
        img += f" https://{parts.netloc}"
    return (
        f"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        f"img-src {img}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


@dataclass(frozen=True)
class Brand:
    name: str
    logo_url: str
    primary_color: str
    support_email: str
    csp: str
    version: str  # changes with the settings: busts the cached /branding.css


def _build(snap: Snapshot) -> Brand:
    logo = str(snap["BRAND_LOGO_URL"])
    return Brand(str(snap["BRAND_NAME"]), logo, str(snap["BRAND_PRIMARY_COLOR"]),
                 str(snap["SUPPORT_EMAIL"]), csp(logo), snap.version)  # fmt: skip


def brand() -> Brand:
    settings = tenant()
    try:
        return settings.snapshot().derive("brand", _build)
    except SQLAlchemyError:  # the database is down: its 503 page must still render (S-FT-05)
        return _build(Snapshot(settings.defaults, {}))


def init_app(app: Flask) -> None:
    """``brand`` in every template; a rendered page is sent with its brand's CSP."""

    @app.context_processor
    def _brand() -> dict[str, Any]:
        current = brand()
        g.idp_csp = current.csp  # read by idp's _security_headers
        return {"brand": current}
