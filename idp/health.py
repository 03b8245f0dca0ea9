"""Liveness and readiness probes (ARCHITECTURE.md §10)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

from idp.extensions import db

bp = Blueprint("health", __name__)


@bp.route("/health/live")
def live() -> Response:
    return jsonify({"status": "ok"})


@bp.route("/branding.css")
def branding_css() -> Response:
    """The accent colour as a stylesheet: the pages' CSP allows no inline style."""
    color = current_app.config["BRAND_PRIMARY_COLOR"]  # validated at start-up
    resp = Response(f":root {{ --accent: {color}; }}\n", mimetype="text/css")
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.route("/health/ready")
def ready() -> Response:
    db.session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})
