"""The verification pages of the device flow (RFC 8628 §3.3): ``/device`` takes the user
code, then the login pipeline runs as for ``/authorize`` (the same interaction: login, consent,
MFA, post-login Actions) and ends at ``/device/<uid>``, where the person sees which
application asks for what and approves or denies it.

- A code from ``verification_uri_complete`` (a QR code, a link) is shown in the form, never
  submitted by itself: the person confirms that it is the one on their device (§5.4, remote
  phishing: a link sent by an attacker would otherwise sign the victim's account in on the
  attacker's device). Every step is a form POST with a CSRF token; no JavaScript.
- Guessing user codes (§5.1) is metered: wrong codes are counted per IP and for everyone
  (``DEVICE_USER_CODE_*``; the numbers are in ``idp.oauth.device``); past either count the
  form answers 429 with ``Retry-After``, for a right code too, until the window ends. The
  answer to an unknown, expired or already decided code is the same.
"""

from __future__ import annotations

import hashlib

from flask import abort, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.consent.service import requested_grants
from idp.extensions import db, services
from idp.flows import pipeline
from idp.flows.consent import _describe
from idp.flows.device_pages import page
from idp.flows.origin import request_origin
from idp.flows.pages import expired_page
from idp.flows.policy import DEVICE_PROMPT
from idp.flows.state import DONE
from idp.flows.step import fail
from idp.flows.views import bp
from idp.i18n import N_, current
from idp.oauth import device
from idp.oauth.authorize import AuthorizationRequest

GLOBAL_KEY = "dev:all"
WRONG_CODE = N_("That code is not valid. Check the code on your device and try again.")


def _ip_key(ip: str) -> str:
    return "dev:ip:" + hashlib.sha256(ip.encode()).hexdigest()[:32]  # no IP in clear text


def shield_retry_after(ip: str) -> int:
    """Seconds this IP (or everyone) may not enter a code: one read of both counters."""
    found = services().shields.store.look([_ip_key(ip), GLOBAL_KEY])
    return max(found.values(), default=0)


def shield_count_failure(ip: str) -> None:
    """Count a wrong code; at a limit, block (this IP, or the form for everyone) for the
    window. Written in the request's transaction."""
    cfg, store = services().config, services().shields.store
    window = int(cfg["DEVICE_USER_CODE_WINDOW_SECONDS"])
    for key, limit in ((_ip_key(ip), cfg["DEVICE_USER_CODE_IP_FAILURES"]),
                       (GLOBAL_KEY, cfg["DEVICE_USER_CODE_GLOBAL_FAILURES"])):  # fmt: skip
        if store.hit(key, window) >= int(limit):
            store.block(key, window)


def _entry(code: str, error: str | None = None, status: int = 200) -> Response:
    return page(
        "device.html", status, user_code=code, error=error,
        from_link=bool(code) and error is None,
    )  # fmt: skip


@bp.route("/device", methods=["GET", "POST"])
def device_entry() -> Response:
    """GET: the form, with ``?user_code=`` filled in to be confirmed; POST: check the code
    through the shield and start the login for it."""
    if not device.enabled():
        abort(404)
    if request.method == "GET":
        return _entry(request.args.get("user_code", "")[:32])
    typed = request.form.get("user_code", "")[:64]
    origin = request_origin()
    retry_after = shield_retry_after(origin.ip or "")
    if retry_after:
        audit.record(db.session, events.IP_THROTTLED, "Device code refused: too many wrong codes",
                     origin)  # fmt: skip
        db.session.commit()
        resp = _entry(typed, "Too many wrong codes were entered. Try again later.", 429)
        resp.headers["Retry-After"] = str(retry_after)
        return resp
    code = device.normalise_user_code(typed)
    row = device.pending(db.session, code) if code is not None else None
    client = services().clients.get(row.client_id) if row is not None else None
    if row is None or client is None or not client.check_grant_type(device.DEVICE_GRANT):
        shield_count_failure(origin.ip or "")
        db.session.commit()
        return _entry(typed, WRONG_CODE, 400)
    req = AuthorizationRequest(
        client_id=row.client_id, redirect_uri="", scope=row.scope,
        audience=row.audience, prompts=(), max_age=None, hint_sub=None, device=row.id,
        params={"ui_locales": current()},  # the login's pages speak this page's language
    )  # fmt: skip
    # End this read before the pipeline (SQLite's write lock is taken at BEGIN): its key
    # refresh takes the key ring's lock, under which another request may wait for ours.
    db.session.commit()
    return pipeline.start(req, client)


@bp.route("/device/<uid>", methods=["GET", "POST"])
def device_approval(uid: str) -> Response:
    """The last step of a device's login: the application, the access it asks for, and who is
    signed in; Approve or Deny (§3.3)."""
    if not device.enabled():
        abort(404)
    step, _page = pipeline.open_step(uid)
    if step is None or step.request.device is None:
        return expired_page()
    if step.state.prompt == DONE and request.method == "POST":  # a second click on Approve
        return page("device_done.html", title=N_("Device connected"), app_name=step.client.name,
                    approved=True)  # fmt: skip
    if step.state.prompt != DEVICE_PROMPT or not step.bound:
        return expired_page()
    assert step.user is not None
    if request.method == "POST":
        if request.form.get("decision") == "allow":
            step.state.device_approved = True
            return pipeline.advance(step)
        return fail(
            step, "access_denied", N_("You denied the request. The device is not connected.")
        )
    items = _describe(requested_grants(step.request.scope, step.request.audience))
    return page(
        "device_confirm.html", uid=uid, app_name=step.client.name, items=items,
        email=step.user.email, audience=step.request.audience,
    )  # fmt: skip
