"""How a device's login ends (RFC 8628 §3.3): the pages the person sees when the pipeline
approves or refuses a device authorization. Called by the pipeline (``_issue``) and by
``step.fail``, so it imports neither."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import make_response, render_template
from werkzeug.wrappers import Response

from idp.extensions import db, services
from idp.flows.state import DONE, save
from idp.i18n import N_, gettext
from idp.oauth import device
from idp.oauth.grants import AuthenticatedUser

if TYPE_CHECKING:  # step.py imports this module
    from idp.flows.step import Step


def page(template: str, status: int = 200, **context: object) -> Response:
    resp = make_response(render_template(template, **context), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def approved(step: Step, who: AuthenticatedUser) -> Response:
    """Approve in the pipeline's transaction, with the interaction spent (``DONE``): the
    device's next poll gets the tokens (§3.5). An authorization that expired during the login,
    or that was decided meanwhile, stays as it is and the page says so."""
    req, row = step.request, step.row
    assert req.device is not None
    ok = device.approve(db.session, req.device, who)
    if row is not None:
        step.state.prompt = DONE
        save(row, step.state)
    db.session.commit()
    client = services().clients.get(req.client_id)
    name = client.name if client is not None else gettext("the application")
    if not ok:
        return ended(N_("This code has expired. Start again on your device to get a new one."))
    return page("device_done.html", title=N_("Device connected"), app_name=name, approved=True)


def refused(device_id: str, error: str, description: str) -> Response:
    """The login ended without approval (the person denied, an Action refused, the user is
    blocked): the device polls ``access_denied`` from now on (§3.5). The caller commits."""
    device.deny(db.session, device_id)
    return ended(description, 200 if error == "access_denied" else 400)


def ended(description: str, status: int = 400) -> Response:
    """The device will not be connected (denied, refused, expired)."""
    return page(
        "device_done.html", status, title=N_("Device not connected"), description=description,
        approved=False,
    )  # fmt: skip
