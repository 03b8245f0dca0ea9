"""Liveness and readiness probes (ARCHITECTURE.md §10)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

from idp.extensions import db

bp = Blueprint("health", __name__)


@bp.route("/health/live")
def live() -> Response:
    return jsonify({"status": "ok"})


@bp.route("/health/ready")
def ready() -> Response:
    db.session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})
