"""The login pipeline: one owner for every way into a login (docs/design-notes.md, "How a
login flows").

``/authorize`` validates the request once and calls :func:`start`; each page that settles a
step (the login form, a passkey, consent, the MFA step, ``/continue``, and the connections to
come) records it in the interaction's :class:`~idp.flows.state.LoginState` and calls
:func:`advance`. ``advance`` asks the interaction policy (``idp.flows.policy``) for the first
prompt that fires and starts it; when none fires, the code is issued, in one transaction with
the interaction's deletion, and the browser goes back to the application.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.actions.commands import Effects
from idp.actions.login import continue_post_login, finish
from idp.audit import events
from idp.audit import service as audit
from idp.extensions import db, services
from idp.flows import cookies, device_pages
from idp.flows import service as flows
from idp.flows.models import LoginSession
from idp.flows.origin import request_origin
from idp.flows.pages import error_page, expired_page
from idp.flows.policy import POLICY, POST_LOGIN_PROMPT, apply_post_login, post_login_event
from idp.flows.state import DONE, LoginState, PostLogin, load, save
from idp.flows.step import Step, fail, finish_response
from idp.i18n import use_ui_locales
from idp.identity.models import User
from idp.oauth import acr, claims_request, response_mode
from idp.oauth.authorize import AuthorizationRequest, issue_code, redirect_with, still_allowed
from idp.oauth.grants import AuthenticatedUser
from idp.tenant.settings import setting

MAX_ROUNDS = 8  # more than the policy has prompts: a prompt that never settles is a bug


def _user_of(session_row: LoginSession | None) -> User | None:
    return db.session.get(User, session_row.user_id) if session_row is not None else None


def start(req: AuthorizationRequest, client: Any) -> Response:
    """``/authorize``: a validated request, and whatever session this browser has."""
    services().keys.refresh()
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    user = _user_of(session_row)
    if user is None or user.blocked:
        session_row, user = None, None  # gone (log in again), or blocked (refused at login)
    state = LoginState(request=req, prompt="")
    use_ui_locales(req.params.get("ui_locales"))  # OIDC Core §3.1.2.1
    step = Step(req, state, client, session_row, user)
    if not acr.attainable(req.params):  # OIDC Core §5.5.1.1: no login here can meet it
        return fail(step, "access_denied", "The requested authentication context is not available.")
    return advance(step)


def open_step(uid: str) -> tuple[Step | None, Response | None]:
    """The interaction ``uid`` of this browser, for a page that settles a step; an error
    page when it is unknown, expired, of another browser or of an older version."""
    cookie = request.cookies.get(cookies.interaction())
    row = flows.get_interaction(db.session, uid, cookie, lock=True)
    state = load(row) if row is not None else None
    client = services().clients.get(row.client_id) if row is not None else None
    if row is None or state is None or client is None:
        return None, expired_page()
    use_ui_locales(state.request.params.get("ui_locales"))  # every page of the login follows
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    step = Step(state.request, state, client, session_row, _user_of(session_row), row)
    return step, None


def complete_login(
    step: Step, user: User, amr: list[str], connection: str | None = None,
    first_credential: str | None = None,
) -> Response:  # fmt: skip
    """The user authenticated (password, passkey, a connection): a new session (a new id at
    every login, S-SS-03), a fresh state for this user, then whatever the policy asks next.
    ``user`` stays referenced so that issuing the code finds it in the identity map."""
    if user.blocked:  # an operator's block: no login by any connection (no session either)
        return refuse_blocked(step, user, connection)
    ttl = int(setting("SESSION_TTL"))  # the tenant's (session_lifetime), else the config's
    cookie_value, session_row = flows.start_session(
        db.session, user.id, amr, ttl, request.cookies.get(cookies.session()), connection
    )
    step.session, step.user = session_row, user
    step.state = LoginState(
        request=step.request,
        prompt="login",
        user_id=user.id,
        sid=session_row.sid,
        logged_in=True,
        first_credential=first_credential,
    )
    step.set_cookies.append((cookies.session(), cookie_value, ttl))
    return advance(step)


def refuse_blocked(step: Step, user: User, connection: str | None = None) -> Response:
    """Auth0's answer to a blocked user: back to the app with ``user is blocked``."""
    audit.record(
        db.session, events.LOGIN_BLOCKED, "Login refused: the user is blocked by an operator",
        request_origin(), user_id=user.id, client_id=step.request.client_id,
        details={"reason": "user_blocked", "connection": connection},
    )  # fmt: skip
    return fail(step, "access_denied", "user is blocked")


def advance(step: Step) -> Response:
    """Start the first prompt that fires; issue the code when none does."""
    for _ in range(MAX_ROUNDS):
        fired = next(((p, r) for p in POLICY if (r := p.reasons(step))), None)
        if fired is None:
            return _issue(step)
        prompt, reasons = fired
        if step.request.prompt_none and prompt.none_error is not None:
            return fail(step, *prompt.none_error)  # OIDC Core §3.1.2.6
        resp = prompt.start(step, reasons)
        if resp is not None:
            return resp
    raise RuntimeError("the interaction policy did not settle")


def _issue(step: Step) -> Response:
    """No prompt fires: mint the code (RFC 6749 §4.1.2) and spend the interaction, in one
    transaction."""
    session_row, user, req = step.session, step.user, step.request
    assert session_row is not None and user is not None  # the login prompt fires otherwise
    if user.blocked:  # SSO from a session older than the block
        return refuse_blocked(step, user, session_row.connection)
    if not still_allowed(req):  # before the chain's metadata is applied to the user
        return fail(step, "unauthorized_client", "The application no longer allows this request.")
    achieved_acr = acr.answer(req.params, session_row.amr)
    if achieved_acr is None:  # an essential acr not met (OIDC Core §5.5.1.1)
        return fail(step, "access_denied", "The requested authentication context was not met.")
    outcome = step.state.post_login
    effects = None
    if outcome is not None and outcome.effects is not None:
        effects = finish(Effects.from_dict(outcome.effects), user, req.audience)
    who = AuthenticatedUser(
        user=user,
        auth_time=session_row.auth_time,
        sid=session_row.sid,
        amr=list(session_row.amr),
        scope=req.scope,
        audience=req.audience,
        acr=achieved_acr,
        action_effects=effects,
        claims=claims_request.released_names(req.params),
    )
    if req.device is not None:  # RFC 8628 §3.3: approved; the device's poll gets the tokens
        return finish_response(step, device_pages.approved(step, who))
    location = issue_code(req, who)
    assert location is not None  # still_allowed() said so, in this transaction
    if step.row is not None:
        step.state.prompt = DONE
        save(step.row, step.state)
    db.session.commit()
    if response_mode.requested(req.params):
        return finish_response(step, _form_post(req, location))
    return finish_response(step, redirect_with(location, {}, code=step.answer_code()))


def _form_post(req: AuthorizationRequest, location: str) -> Response:
    """The code (and state, iss) posted to the redirect URI (Form Post Response Mode §2):
    the code is the last ``code`` of the location Authlib built (its own query's come first)."""
    code = [v for k, v in parse_qsl(urlsplit(location).query) if k == "code"][-1]
    mode = response_mode.FORM_POST
    return redirect_with(req.redirect_uri, {"code": code, "state": req.state or ""}, mode=mode)


def resend(step: Step) -> Response | None:
    """A page posted again after the login moved on (a double click): send the browser to
    where the login is now. Once the code was issued,
    or while the post-login chain runs for the first click, that is a new authorization
    request with the same parameters, which the policy answers afresh (SSO, ``max_age`` and
    all), as going back through ``/authorize`` always did; the interaction itself never
    answers twice. (Each target checks the browser and session itself.)"""
    if request.method != "POST":
        return None
    uid = step.row.uid if step.row is not None else ""
    prompt, post_login = step.state.prompt, step.state.post_login
    running = prompt == POST_LOGIN_PROMPT and (post_login is None or not post_login.paused_action)
    if prompt == DONE or running:
        target = (
            "/device" if step.request.device else "/authorize?" + urlencode(step.request.params)
        )
    elif prompt in ("consent", "mfa"):
        target = f"/interaction/{uid}/{prompt}"
    elif prompt == "device":
        target = f"/device/{uid}"
    else:
        return None
    resp = redirect(target, code=303)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def continue_paused(step: Step) -> Response:
    """``/continue``: run the paused action's ``on_continue_post_login`` and the rest of the
    chain, then go on as the policy says (the same state, so nothing runs twice)."""
    paused = step.state.post_login
    if step.state.prompt != POST_LOGIN_PROMPT or paused is None or paused.paused_action is None:
        return error_page(
            "This login cannot be continued",
            "The link is invalid or has expired. Go back to the application and sign in again.",
        )
    if not step.bound:
        return fail(step, "access_denied", "The login session changed.")
    assert step.session is not None and step.user is not None and step.row is not None
    action, effects = paused.paused_action, paused.paused_effects or {}
    step.state.post_login = PostLogin()  # running, committed with the event: no second run
    event = post_login_event(step)
    outcome = continue_post_login(
        step.user, step.client, event, paused_action=action, paused_effects=effects,
        state=step.row.uid,
    )  # fmt: skip
    return apply_post_login(step, outcome) or advance(step)
