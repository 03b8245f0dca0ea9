"""One login being decided in this request (:class:`Step`), and the ways a prompt answers the
browser: show its page (persisting the interaction), or fail with an OAuth error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import request
from werkzeug.wrappers import Response

from idp.extensions import db, services
from idp.flows import cookies, device_pages
from idp.flows import service as flows
from idp.flows.models import Interaction, LoginSession
from idp.flows.pages import error_page
from idp.flows.state import LoginState, save
from idp.identity.models import User
from idp.oauth import response_mode
from idp.oauth.authorize import AuthorizationRequest, error_redirect


@dataclass
class Step:
    """One login being decided in this request: the validated request, what is settled, the
    browser's session, and the cookies the answer must set."""

    request: AuthorizationRequest
    state: LoginState
    client: Any
    session: LoginSession | None
    user: User | None
    row: Interaction | None = None
    set_cookies: list[tuple[str, str, int]] = field(default_factory=list)
    new_interaction_secret: str | None = None

    @property
    def bound(self) -> bool:
        """The browser's session is the one this interaction's login belongs to."""
        return (
            self.session is not None
            and self.user is not None
            and self.state.sid is not None
            and self.session.sid == self.state.sid
        )

    def answer_code(self) -> int:
        """303 after a form POST, so the browser never re-posts it (OAuth 2.1 §7.5.3)."""
        return 303 if request.method == "POST" else 302


def persist(step: Step, prompt: str) -> Interaction:
    """Write the interaction (created on first need) in the open transaction; the caller
    commits."""
    step.state.prompt = prompt
    if step.session is not None and step.state.sid is None:
        step.state.sid, step.state.user_id = step.session.sid, step.session.user_id
    if step.row is None:
        ttl = services().config["INTERACTION_TTL"]
        secret, step.row = flows.create_interaction(
            db.session, step.request.client_id, step.state.as_json(), ttl
        )
        step.new_interaction_secret = secret
    else:
        save(step.row, step.state)
    return step.row


def show(step: Step, prompt: str, respond: Callable[[Interaction], Response]) -> Response:
    """Persist the interaction (created on first need) and answer with its page."""
    row = persist(step, prompt)
    db.session.commit()
    return finish_response(step, respond(row))


def restart(step: Step) -> None:
    """Replace the interaction by a new one (new uid, new browser binding) at the next
    :func:`show`: a redirect's ``state`` is good for one pause only."""
    if step.row is not None:
        flows.delete_interaction(db.session, step.row)
        step.row = None


def fail(step: Step, error: str, description: str) -> Response:
    """An OAuth error for the app at its redirect URI (RFC 6749 §4.1.2.1), validated again
    now (a page if the client no longer allows it); the interaction is spent."""
    if step.row is not None:
        flows.delete_interaction(db.session, step.row)
    req = step.request
    if req.device is not None:  # RFC 8628 §3.5: no redirect; the device polls access_denied
        resp = device_pages.refused(req.device, error, description)
        db.session.commit()
        return finish_response(step, resp, spent=step.row is not None)
    db.session.commit()
    client = services().clients.get(req.client_id)
    if client is None or not client.check_redirect_uri(req.redirect_uri):
        resp = error_page(
            "Request expired",
            "This page is no longer valid. Go back to the application and sign in again.",
        )
    else:
        mode = response_mode.requested(req.params)
        resp = error_redirect(
            req.redirect_uri, error, description, req.state, step.answer_code(), mode
        )
    return finish_response(step, resp, spent=step.row is not None)


def finish_response(step: Step, resp: Response, spent: bool = False) -> Response:
    svc = services()
    if step.new_interaction_secret is not None and not spent:
        cookies.put(resp, cookies.interaction(), step.new_interaction_secret,
                    svc.config["INTERACTION_TTL"])  # fmt: skip
    elif spent:
        resp.delete_cookie(cookies.interaction(), path="/")
    for name, value, max_age in step.set_cookies:
        cookies.put(resp, name, value, max_age)
    resp.headers["Cache-Control"] = "no-store"
    return resp
