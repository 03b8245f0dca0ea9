"""A login through a connection goes through the same steps as a password login: the
registration triggers on the first login (with the connection in their event), the MFA step
an action asks for, the login count and the tenant log."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import has_app_context
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.identity.models import User
from tests.conftest import LiveServer
from tests.connections.social import add_connection, upstream_login
from tests.connections.upstream import OidcUpstream


def _user(op: LiveServer, email: str) -> User | None:
    with op.app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge_all()
        return user


def test_pre_user_registration_can_refuse_a_first_login(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    op.factory.clear_actions()
    op.factory.gen_action(
        "closed", "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n"
        f"    if event.connection.name == '{name}':\n"
        "        api.access.deny('closed', 'Sign-ups through this provider are closed.')\n",
    )  # fmt: skip
    _, arrival = upstream_login(op, oidc_upstream, client, name, "verified-closed@example.com")
    assert arrival.params.get("error") == "access_denied"
    assert arrival.params.get("error_description") == "Sign-ups through this provider are closed."
    assert _user(op, "verified-closed@example.com") is None
    op.factory.clear_actions()


def test_pre_user_registration_metadata_lands_on_the_new_user(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    op.factory.clear_actions()
    op.factory.gen_action(
        "tag", "pre-user-registration",
        "def on_execute_pre_user_registration(event, api):\n"
        "    api.user.set_app_metadata('came_through', event.connection.strategy)\n",
    )  # fmt: skip
    browser, arrival = upstream_login(op, oidc_upstream, client, name, "verified-tag@ex.com")
    assert browser.tokens(arrival)
    user = _user(op, "verified-tag@ex.com")
    assert user is not None and user.app_metadata == {"came_through": "oidc"}
    op.factory.clear_actions()


def watch_background_jobs(
    op: LiveServer, monkeypatch: pytest.MonkeyPatch, email: str
) -> tuple[list[str | None], list[threading.Event]]:
    """Every job handed to the background actions queue (post-user-registration here): what a
    fresh session saw of the user ``email`` as the job started (its id: the user was
    committed), and an event set once the job has run. None as well when the request handing
    the job over still had a transaction open: on SQLite the job's read would wait for that
    transaction's commit (``BEGIN IMMEDIATE``) and see the user all the same."""
    with op.app.app_context():
        engine = services().actions
    submit = engine.submit
    seen: list[str | None] = []
    finished: list[threading.Event] = []

    def watched(job: Callable[[], None]) -> bool:
        done = threading.Event()
        # in the thread handing it over (the request's, with its app context)
        uncommitted = has_app_context() and db.session.in_transaction()

        def run() -> None:
            try:
                with op.app.app_context():  # another session: it sees committed rows only
                    user_id = db.session.scalar(select(User.id).where(User.email == email))
                    seen.append(None if uncommitted else user_id)
                job()
            finally:
                done.set()

        finished.append(done)
        return submit(run)

    monkeypatch.setattr(engine, "submit", watched)
    return seen, finished


def test_post_user_registration_runs_once_after_a_first_login_is_committed(
    social_op: LiveServer, oidc_upstream: OidcUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As tests/actions/test_registration.py does for a database sign-up: the action runs in
    the background for the user the first login created, once that user is committed, and
    not again on the next login through the same connection."""
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    op.factory.clear_actions()
    action_id = op.factory.gen_action(
        "welcome", "post-user-registration",
        "def on_execute_post_user_registration(event, api):\n"
        "    print('welcome', event.connection.name, event.user.email, event.user.user_id)\n",
    )  # fmt: skip
    login = "verified-welcome@example.com"
    seen, finished = watch_background_jobs(op, monkeypatch, login)

    browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
    assert browser.tokens(arrival)
    user = _user(op, login)
    assert user is not None
    assert len(finished) == 1 and finished[0].wait(30), "post-user-registration never ran"
    assert seen == [user.id]  # the user was in the database when the chain started
    (record,) = op.factory.executions(action_id)
    assert record.outcome == "success" and record.user_id == user.id
    assert f"welcome {name} {login} {user.id}" in record.logs

    browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
    assert browser.tokens(arrival)
    assert len(finished) == 1  # a repeat login queues no registration chain
    assert len(op.factory.executions(action_id)) == 1
    op.factory.clear_actions()


def test_an_action_can_ask_a_social_login_for_mfa(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    op.factory.clear_actions()
    op.factory.gen_action(
        "mfa", "post-login",
        "def on_execute_post_login(event, api):\n"
        "    api.multifactor.enable('any')\n",
    )  # fmt: skip
    _, arrival = upstream_login(op, oidc_upstream, client, name, "verified-mfa@example.com")
    assert arrival.code is None
    assert arrival.status == 200 and "Set up a second step" in arrival.page
    op.factory.clear_actions()


def test_a_social_login_is_counted_and_logged(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    login = "verified-counted@example.com"
    for _ in range(2):
        browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
        assert browser.tokens(arrival)
    user = _user(op, login)
    assert user is not None and user.logins_count == 2
    with op.app.app_context():
        types = list(
            db.session.scalars(
                select(LogEvent.type).where(LogEvent.user_id == user.id).order_by(LogEvent.id)
            )
        )
    assert types.count("login.success") == 2 and types.count("signup.success") == 1
