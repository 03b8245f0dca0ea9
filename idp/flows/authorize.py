"""``/authorize`` (RFC 6749 §4.1.1, OIDC Core §3.1.2): the browser's way into the login
pipeline. The request is validated once here (``idp.oauth.authorize.validate``); a refusal
goes to the validated redirect URI or, without one, to a page (never an unvalidated
redirect); an accepted request is handed to the pipeline, which keeps it with the interaction.
"""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

from idp.extensions import csrf, services
from idp.flows import pipeline
from idp.flows.pages import error_page
from idp.flows.views import bp
from idp.oauth.authorize import Rejection, error_redirect, validate


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # an authorization request from any app's page, not a form of ours
def authorize() -> Response:
    source = request.form if request.method == "POST" else request.args
    checked = validate(source, request.method)
    if isinstance(checked, Rejection):
        if checked.redirect_uri is None:
            return error_page(checked.title, checked.description or checked.error)
        code = 303 if request.method == "POST" else 302  # OAuth 2.1 §7.5.3
        return error_redirect(  # by form_post too, when asked, once the URI is validated
            checked.redirect_uri, checked.error, checked.description, checked.state, code,
            checked.response_mode,
        )  # fmt: skip
    client = services().clients.get(checked.client_id)
    return pipeline.start(checked, client)


@bp.route("/continue", methods=["GET", "POST"])
@csrf.exempt  # bound to the interaction cookie and an unguessable state instead
def continue_login() -> Response:
    """Where a post-login redirect action sends the user back (Auth0's path): resume the
    paused chain, then go on with the login."""
    state = (request.values.get("state") or "")[:64]
    step, _page = pipeline.open_step(state)
    if step is None:
        return error_page(
            "This login cannot be continued",
            "The link is invalid or has expired. Go back to the application and sign in again.",
        )
    return pipeline.continue_paused(step)
