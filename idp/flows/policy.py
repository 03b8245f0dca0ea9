"""The interaction policy, as data (in the spirit of node-oidc-provider's
``interaction_policy``): an ordered tuple of prompts, each with its named checks and a
``start``. The pipeline starts the first prompt whose checks fire; none left means the code is
issued. Upstream logins (``idp.flows.connection``) are the login prompt's too: its page
offers them, and ``connection=`` at ``/authorize`` goes straight to one.

A prompt's ``reasons`` returns the names of its checks that fire (the check tables live with
their domain: ``idp.flows.prompts`` for login and consent, ``idp.mfa.policy`` for MFA).
``start`` answers the browser (a page) or settles the prompt in place and returns None (the
post-login chain, when it neither pauses nor refuses). With ``prompt=none`` a prompt that
needs the user ends the request with its ``none_error`` instead (OIDC Core §3.1.2.6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import redirect
from werkzeug.wrappers import Response

from idp.actions import chains
from idp.actions.login import login_event, run_post_login
from idp.actions.triggers import POST_LOGIN
from idp.connections import service as connections
from idp.consent import service as consent
from idp.extensions import db
from idp.flows import federation
from idp.flows.models import Interaction
from idp.flows.pages import error_page, login_buttons, login_page
from idp.flows.prompts import ConsentContext, PromptContext, consent_reasons, login_reasons
from idp.flows.state import MfaStep, PostLogin, save
from idp.flows.step import Step, fail, restart, show
from idp.mfa import flow as mfa_flow
from idp.mfa.policy import MFA_ACR
from idp.oauth import acr
from idp.oauth.claims_request import consent_scope
from idp.oauth.subjects import local_hint

POST_LOGIN_PROMPT = "post_login"
DEVICE_PROMPT = "device"


@dataclass(frozen=True)
class Prompt:
    name: str
    reasons: Callable[[Step], list[str]]
    start: Callable[[Step, list[str]], Response | None]
    none_error: tuple[str, str] | None  # None: the prompt runs without the user


# --------------------------------------------------------------------------- login
def _login_reasons(step: Step) -> list[str]:
    req = step.request
    reasons = login_reasons(
        PromptContext(
            session=step.session,
            prompts=frozenset(req.prompts),
            max_age=req.max_age,
            hint_sub=local_hint(step.client, step.session, req.hint_sub),  # pairwise (§8)
            fresh_login=step.state.logged_in,
        )
    )
    # SSO only from a session whose connection this application has enabled (sessions
    # older than migration 0014 have none recorded: they are the database connection's).
    came_through = step.session.connection if step.session is not None else None
    if not connections.is_enabled(step.client, came_through or connections.DATABASE):
        reasons.append("connection_disabled")
    return reasons


def database_refused(client: Any) -> Response | None:
    """The page that replaces the login form and sign-up when the application does not have
    the database connection enabled; None when it does. It depends on the application only,
    never on who asks (no enumeration), and reads the cached client (no query)."""
    if connections.is_enabled(client, connections.DATABASE):
        return None
    return error_page(
        "Sign-in is not available",
        "This application has no sign-in method enabled. Contact its administrator.",
        403,
    )


def nothing_enabled(client: Any) -> Response | None:
    """The page that replaces the login page when the application has no connection
    enabled; None when it has one. It depends on the application only (no enumeration)."""
    if getattr(client, "connections", ()):
        return None
    return error_page(
        "Sign-in is not available",
        "This application has no sign-in method enabled. Contact its administrator.",
        403,
    )


def _start_login(step: Step, reasons: list[str]) -> Response:
    refused = nothing_enabled(step.client)
    if refused is not None:  # no form, and no interaction to post one to
        return refused
    if step.state.logged_in:
        # only id_token_hint can still fire after a login: someone other than the hinted
        # user just logged in (OIDC Core §3.1.2.2)
        return fail(step, "login_required", "End-user authentication is required.")
    req = step.request
    wanted = req.params.get("connection", "")
    if wanted and wanted != connections.DATABASE:  # Auth0's connection=: skip the page
        upstream = federation.social_connection(step.client, wanted[:63])
        if upstream is None:
            return fail(step, "invalid_request", "The connection is not enabled for this app.")
        return federation.go_upstream(step, upstream)
    if wanted and not connections.is_enabled(step.client, connections.DATABASE):
        return fail(step, "invalid_request", "The connection is not enabled for this app.")
    domain = (
        req.params.get("domain_hint", "") or req.params.get("login_hint", "").rpartition("@")[2]
    )
    realm = federation.home_realm(step.client, "@" + domain[:253]) if domain else None
    if realm is not None and not wanted:  # Home Realm Discovery from the app's hint
        return federation.go_upstream(step, realm)
    hint = req.params.get("login_hint", "")
    # read in the interaction's transaction: after its commit, the read would begin another
    buttons = login_buttons(step.client)
    return show(
        step, "login", lambda row: login_page(row.uid, req.client_id, hint, buttons=buttons)
    )


# --------------------------------------------------------------------------- consent
def _consent_reasons(step: Step) -> list[str]:
    if step.client.first_party:  # first-party apps never ask: skip the lookup
        return []
    assert step.session is not None
    req = step.request
    # claims asked for by name need their scope's consent (idp.oauth.claims_request)
    wanted = consent.requested_grants(consent_scope(req.scope, req.params), req.audience)
    missing = consent.missing_grants(db.session, step.session.user_id, req.client_id, wanted)
    return consent_reasons(
        ConsentContext(
            first_party=False,
            prompts=frozenset(req.prompts),
            missing=tuple(missing),
            fresh_consent=step.state.consented,
        )
    )


def _start_consent(step: Step, reasons: list[str]) -> Response:
    return show(step, "consent", lambda row: redirect(f"/interaction/{row.uid}/consent", 303))


# --------------------------------------------------------------------------- mfa
def _mfa_reasons(step: Step) -> list[str]:
    """Decided once per interaction (kept in the state); nothing once the session has MFA."""
    assert step.session is not None
    if step.state.mfa_passed or mfa_flow.session_has_mfa(step.session):
        return []
    if step.state.mfa is None:
        params = step.request.params
        if acr.mfa_requested(params):  # acr asked through claims (§5.5.1.1) as acr_values
            params = {**params, "acr_values": MFA_ACR}
        reasons = mfa_flow.needed(step.session.user_id, step.client, params)
        step.state.mfa = MfaStep(reasons=reasons)
    return step.state.mfa.reasons


def _start_mfa(step: Step, reasons: list[str]) -> Response:
    step.state.ceremony = {}
    return show(step, "mfa", lambda row: redirect(f"/interaction/{row.uid}/mfa", 303))


# --------------------------------------------------------------------------- post-login
def _post_login_reasons(step: Step) -> list[str]:
    if step.state.post_login is not None or not chains.bound(POST_LOGIN):
        return []
    return ["chain_bound"]


def post_login_event(step: Step) -> dict[str, Any]:
    """The post-login event of this login. Then this request's work, the interaction's state
    included, is committed: a chain never runs inside a transaction (it may take seconds, and
    SQLite has one writer), and whatever it decides, the login's progress so far is kept."""
    assert step.session is not None and step.user is not None
    req = step.request
    protocol = "oauth2-device-code" if req.device else "oidc-basic-profile"  # Auth0's names
    event = login_event(
        step.user, step.client, req.params, step.session, req.scope, req.audience, protocol
    )
    if step.row is not None:
        save(step.row, step.state)
    db.session.commit()
    return event


def _start_post_login(step: Step, reasons: list[str]) -> Response | None:
    assert step.user is not None
    # Committed with the event: while the chain runs, every page of this interaction sees a
    # login past its own step (a second click is sent on, never runs the chain again).
    step.state.prompt = POST_LOGIN_PROMPT
    event = post_login_event(step)
    outcome = run_post_login(
        step.user, step.client, event, interactive=not step.request.prompt_none
    )
    return apply_post_login(step, outcome)


def apply_post_login(step: Step, outcome: chains.Outcome) -> Response | None:
    """Map the chain's outcome onto the login: refuse, pause at a redirect, ask for MFA
    (then finish from these effects without running the chain again), or settle."""
    if outcome.denied is not None:
        return fail(step, outcome.denied.error, outcome.denied.description)
    if outcome.paused is not None:
        return _pause(step, outcome)
    step.state.post_login = PostLogin(effects=outcome.effects.as_dict())
    assert step.session is not None
    if outcome.mfa is not None and not mfa_flow.session_has_mfa(step.session):
        if step.request.prompt_none:
            return fail(step, "interaction_required", "Multi-factor authentication is required.")
        decided = step.state.mfa or MfaStep(reasons=[])
        step.state.mfa = MfaStep(
            reasons=[*decided.reasons, "action_requested"],
            allow_remember_browser=outcome.mfa.allow_remember_browser,
        )
        step.state.mfa_passed = False
    return None


def _pause(step: Step, outcome: chains.Outcome) -> Response:
    """Persist the paused chain and send the browser to the action's URL with ``state``."""
    paused = outcome.paused
    assert paused is not None
    step.state.post_login = PostLogin(
        paused_action=paused.action_id, paused_effects=outcome.effects.as_dict()
    )
    restart(step)

    def to_action(row: Interaction) -> Response:
        parts = urlsplit(paused.url)
        query = [*([parts.query] if parts.query else []),
                 urlencode({**paused.query, "state": row.uid})]  # fmt: skip
        return redirect(urlunsplit(parts._replace(query="&".join(query))), code=303)

    return show(step, POST_LOGIN_PROMPT, to_action)


# --------------------------------------------------------------------------- device
def _device_reasons(step: Step) -> list[str]:
    """RFC 8628 §3.3: a device's login ends with the person's approval (idp.flows.device)."""
    return ["device_approval"] if step.request.device and not step.state.device_approved else []


def _start_device(step: Step, reasons: list[str]) -> Response:
    return show(step, DEVICE_PROMPT, lambda row: redirect(f"/device/{row.uid}", 303))


POLICY: tuple[Prompt, ...] = (
    Prompt(
        "login",
        _login_reasons,
        _start_login,
        ("login_required", "End-user authentication is required."),
    ),
    Prompt(
        "consent",
        _consent_reasons,
        _start_consent,
        ("consent_required", "The user has not consented to this request."),
    ),
    Prompt(
        "mfa",
        _mfa_reasons,
        _start_mfa,
        ("interaction_required", "Multi-factor authentication is required."),
    ),
    Prompt(POST_LOGIN_PROMPT, _post_login_reasons, _start_post_login, None),
    Prompt(DEVICE_PROMPT, _device_reasons, _start_device, None),
)
