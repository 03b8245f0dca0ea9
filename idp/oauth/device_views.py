"""``POST /oauth/device/code``, the device authorization endpoint (RFC 8628 §3.1-§3.2)."""

from __future__ import annotations

from flask import abort
from werkzeug.wrappers import Response

from idp.extensions import services
from idp.oauth import device
from idp.oauth.server import authorization_server
from idp.oauth.views import _finish, _form_problem, bp


@bp.route("/oauth/device/code", methods=["POST"])
def device_authorization() -> Response:
    """A form POST like the token endpoint's (§3.1), its errors RFC 6749 §5.2's (§3.2), with
    the same count of failed client authentications (``_finish``)."""
    if not device.enabled():
        abort(404)  # off: no such endpoint (and none in discovery)
    problem = _form_problem()
    if problem is not None:
        return problem
    services().keys.refresh()
    return _finish(authorization_server().create_endpoint_response("device_authorization"))
