"""Liveness and readiness probes (ARCHITECTURE.md §10)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

from idp.extensions import db, services
from idp.tenant.branding import brand

bp = Blueprint("health", __name__)


@bp.route("/health/live")
def live() -> Response:
    return jsonify({"status": "ok"})


def _luminance(color: str) -> float:
    """Relative luminance of ``#rrggbb`` (WCAG 2.1, definition of relative luminance)."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_on(color: str) -> str:
    """White text on the accent when it reaches the 4.5:1 of WCAG 1.4.3, else black (which then
    reaches more than 4.6:1), so any brand colour keeps the buttons readable."""
    white_contrast = 1.05 / (_luminance(color) + 0.05)
    return "#ffffff" if white_contrast >= 4.5 else "#000000"


@bp.route("/branding.css")
def branding_css() -> Response:
    """The accent colour as a stylesheet: the pages' CSP allows no inline style. The accent
    fills the primary buttons; their text colour is chosen here to contrast with it."""
    color = brand().primary_color  # validated at start-up or by the API (#rrggbb)
    css = f":root {{ --accent: {color}; --accent-text: {text_on(color)}; }}\n"
    resp = Response(css, mimetype="text/css")
    # the pages link it with ?v=<settings version>: a new colour is a new URL, not a stale copy
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.route("/health/ready")
def ready() -> Response:
    """The database answers; also which sandbox Actions run in (or why they cannot run)."""
    db.session.execute(text("SELECT 1"))
    runner = services().actions.runner
    runner.ensure_probed()
    return jsonify(
        {"status": "ok", "actions": {"isolation": runner.level, "detail": runner.reason}}
    )
