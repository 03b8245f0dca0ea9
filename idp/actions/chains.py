"""The one way a flow runs a trigger's chain: ``run(TRIGGER, event, ...) -> Outcome``.

Every trigger (post-login, credentials-exchange, pre- and post-user-registration,
post-change-password, send-phone-message) answers with the same :class:`Outcome`: effects to
apply, and at most one of a refusal, a demand for MFA or a redirect that paused the chain. A
chain that fails closed is a refusal too; nothing is raised to steer the caller.

A chain can take seconds, and SQLite has one writer: :func:`run` refuses to start while the
request's database transaction is open (a programming error, raised as
:class:`OpenTransactionError`). Callers read what the event needs, commit, then run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, has_app_context

from idp.actions.commands import DENY_CODES, Effects
from idp.actions.engine import ActionsFailed, ChainResult, Link
from idp.extensions import db, services

log = logging.getLogger(__name__)


class OpenTransactionError(RuntimeError):
    """A chain was started while the request's database transaction was open."""


@dataclass(frozen=True)
class Denial:
    """The chain refused: an OAuth error for the app and, for pages, a message for people."""

    error: str
    description: str
    status: int = 403
    user_message: str | None = None
    failed: bool = False  # the chain failed closed (an error), rather than an action denying


@dataclass(frozen=True)
class MfaDemand:
    """``api.multifactor.enable`` (or ``challenge_with`` / ``enroll_with``)."""

    allow_remember_browser: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pause:
    """``api.redirect.send_user_to``: the chain waits at ``action_id`` for ``/continue``."""

    action_id: str
    url: str
    query: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """What a trigger's chain decided. ``ran`` is False when nothing is bound."""

    effects: Effects = field(default_factory=Effects)
    denied: Denial | None = None
    mfa: MfaDemand | None = None
    paused: Pause | None = None
    ran: bool = False


def bound(trigger: str) -> bool:
    """Whether a chain is bound (cached; a hot path that hits the cache opens no session)."""
    return services().actions.has_chain(trigger, lambda: db.session)


def chain(trigger: str) -> list[Link]:
    """The bound chain, read (on a cache miss) in a transaction of its own: called between
    the caller's commit and :func:`run`."""
    return services().actions.chain(trigger)


def _guard() -> None:
    session = g.get("_idp_db_session") if has_app_context() else None
    if session is not None and session.in_transaction():
        raise OpenTransactionError(
            "a database transaction is open: commit before running an actions chain"
        )


def run(
    trigger: str,
    event: dict[str, Any],
    *,
    request_id: str | None = None,
    client_id: str | None = None,
    user_id: str | None = None,
    interactive: bool = True,
    links: list[Link] | None = None,
    state: str | None = None,
    entry: str | None = None,
    effects: Effects | None = None,
    redact: dict[str, str] | None = None,
) -> Outcome:
    """Run ``trigger``'s chain (or ``links``, from ``entry``, on top of ``effects``, for a
    resumed post-login chain) and say what it decided. ``redact``: credentials the event
    carries (named values), kept out of the execution records' logs."""
    _guard()
    try:
        result = services().actions.run(
            trigger, event, request_id=request_id, client_id=client_id, user_id=user_id,
            interactive=interactive, links=links, state=state, entry=entry, effects=effects,
            redact=redact,
        )  # fmt: skip
    except ActionsFailed as exc:
        return Outcome(denied=Denial(exc.error, exc.description, failed=True), ran=True)
    return outcome_of(result)


def outcome_of(result: ChainResult) -> Outcome:
    effects = result.effects
    deny, mfa, redirect = effects.deny, effects.mfa, effects.redirect
    effects.deny = effects.redirect = None
    return Outcome(
        effects=effects,
        denied=Denial(deny.code, deny.reason, DENY_CODES.get(deny.code, 403), deny.user_message)
        if deny is not None
        else None,
        mfa=MfaDemand(bool(mfa.get("allow_remember_browser", False)), dict(mfa))
        if mfa is not None
        else None,
        paused=Pause(result.paused_at.action_id, redirect["url"], dict(redirect["query"]))
        if redirect is not None and result.paused_at is not None
        else None,
        ran=True,
    )


def run_in_background(trigger: str, event: dict[str, Any], **ids: Any) -> None:
    """Non-blocking triggers (post-user-registration, post-change-password): a background
    thread with its own app context; a refusal or failure is logged, never shown."""
    if not bound(trigger):
        return
    db.commit_if_used()  # the check may have read: no write lock held while the job starts
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def job() -> None:
        with app.app_context():
            outcome = run(trigger, event, **ids)
            if outcome.denied is not None:
                log.warning("%s chain failed: %s", trigger, outcome.denied.description)

    services().actions.submit(job)
