"""The web authenticator and its Web Push routes (the protocol is in webpush.py and push.py).

* ``/mfa/push/app/``: an installable page (a manifest, a service worker) that a person opens
  on a phone to enrol it as a push device through the same ``/mfa/push/enroll`` call as
  ``idp-authenticator``, its key made by WebCrypto and never extractable. Scripts are files,
  never inline; the page's CSP is the pages' strict one plus ``manifest-src`` and
  ``worker-src`` 'self'.
* ``/mfa/push/vapid``: the VAPID public key (RFC 8292 §3.2), the ``applicationServerKey``.
* ``/mfa/push/subscription``: a device replaces (PUT) or drops (DELETE) its subscription, with
  its device token as for the other device calls.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, make_response, render_template, request, send_from_directory
from werkzeug.wrappers import Response

from idp.extensions import csrf, db, services
from idp.mfa import factors as registry
from idp.mfa import push, webpush
from idp.mfa.push_views import _device, _problem
from idp.tenant.branding import brand

bp = Blueprint("mfa_webpush", __name__)
ASSETS = Path(__file__).resolve().parents[1] / "static" / "push"
TYPES = {
    "app.js": "text/javascript",
    "sw.js": "text/javascript",
    "app.css": "text/css",
    "icon.svg": "image/svg+xml",
    "manifest.webmanifest": "application/manifest+json",
}


def _vapid_key() -> str:
    svc = services()
    key = webpush.ensure_vapid_key(db.session, svc.box).public_key
    db.session.commit()
    return key


@bp.route("/mfa/push/vapid", methods=["GET"])
def vapid() -> Response:
    resp = jsonify({"public_key": _vapid_key()})
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.route("/mfa/push/app/", methods=["GET"])
def app_page() -> Response:
    if not registry.enabled("push"):
        return make_response("push approval is not enabled here", 404)
    page = render_template("mfa_push_app.html", issuer=services().config["ISSUER"],
                           vapid_key=_vapid_key())  # fmt: skip
    resp = make_response(page)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = (
        brand().csp + "; manifest-src 'self'; worker-src 'self'"
    )
    return resp


@bp.route("/mfa/push/app/<name>", methods=["GET"])
def asset(name: str) -> Response:
    """The page's static files; the service worker from here, so that its scope is the page's
    folder (a worker controls only what is under its own path)."""
    if name not in TYPES:
        return make_response("not found", 404)
    resp = send_from_directory(ASSETS, name, mimetype=TYPES[name], max_age=0)
    resp.headers["Cache-Control"] = "no-cache"  # a new worker or script is picked up at once
    return resp


@bp.route("/mfa/push/subscription", methods=["PUT", "DELETE"])
@csrf.exempt  # a device with a token in a header, never a browser cookie
def subscription() -> Response:
    svc = services()
    try:
        device = _device()
        if request.method == "DELETE":
            webpush.unsubscribe(db.session, device)
        else:
            webpush.subscribe(db.session, device, request.get_json(silent=True), svc.config)
    except push.PushError as exc:
        db.session.rollback()
        return _problem(exc.status, str(exc))
    except webpush.SubscriptionError as exc:
        db.session.rollback()
        return _problem(400, str(exc))
    db.session.commit()
    return make_response("", 204)
