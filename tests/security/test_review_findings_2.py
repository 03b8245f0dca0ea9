"""Regression tests for the second review's findings (DPoP, pages' languages, back-channel
logout, observability, several instances): each failed before its fix."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine, text

from idp.core.crypto import sha256_hex
from tests.conftest import TEST_DB_URL, LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("review2")
    with serving(lambda port: build_app(tmp, port)) as server:
        yield server


def _waiting_on_locks(conn: object, database: str) -> int:
    return int(
        conn.execute(  # type: ignore[attr-defined]
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar()
    )


@pytest.mark.skipif(
    not TEST_DB_URL.startswith("postgresql"),
    reason="SQLite serialises the two logins at BEGIN IMMEDIATE: no interleaving to race",
)
def test_two_logins_of_one_user_in_one_browser_at_once_are_not_a_500(site):
    """Attack: one browser (one session cookie) of a signed-in user completes two logins of that
    user at once (two interactions, e.g. prompt=login in two tabs of a scripted user agent).
    Each read the session, then moved its key to its own new cookie through the ORM; the second
    UPDATE found the row's key already moved by the first (PostgreSQL re-reads the row after the
    first commits) and SQLAlchemy's StaleDataError made it a 500. Fixed: the key moves by a
    conditional UPDATE, and a login that finds it moved starts a session of its own."""
    client, user = site.factory.gen_client(), site.factory.gen_user()
    first = Browser(site.url)
    assert first.authorize(auth_params(client, pkce()[1]), user).code
    cookie = first.http.cookies.get("idp_session")
    assert cookie
    forms = []
    for _ in range(2):  # two interactions, each with its own interaction cookie
        tab = Browser(site.url)
        tab.http.cookies.update(first.http.cookies)  # the same cookies, domain and path
        shown = tab.authorize(auth_params(client, pkce()[1], prompt="login"))
        action = login_form_action(shown.page)
        assert shown.login_shown and action, shown.page[:300]
        fields = hidden_inputs(shown.page) | {"email": user.email, "password": user.password}
        forms.append((tab, action, fields))

    engine = create_engine(str(site.app.config["DATABASE_URL"]))
    database = engine.url.database or ""
    answers: list[requests.Response] = []
    try:
        with engine.connect() as holder, engine.connect() as watcher:
            # hold the session's row, so both logins reach their write of it before either commits
            holder.execute(
                text("SELECT 1 FROM login_sessions WHERE id_hash = :h FOR UPDATE"),
                {"h": sha256_hex(cookie)},
            )

            def post(tab: Browser, action: str, fields: dict[str, str]) -> None:
                answers.append(tab.http.post(site.url + action, data=fields, allow_redirects=False))

            threads = [threading.Thread(target=post, args=form) for form in forms]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while _waiting_on_locks(watcher, database) < 2 and time.monotonic() < deadline:
                watcher.rollback()
                time.sleep(0.05)
            both_waiting = _waiting_on_locks(watcher, database) >= 2
            holder.rollback()  # let them go
            for thread in threads:
                thread.join(timeout=60)
    finally:
        engine.dispose()
    assert both_waiting, "the two logins did not both reach the session's row"
    assert len(answers) == 2
    assert all(a.status_code in (302, 303) for a in answers), [
        (a.status_code, a.text[:300]) for a in answers
    ]
    # each browser tab carries on signed in: its new cookie names a live session of the user
    for tab, _action, _fields in forms:
        done = tab.authorize(auth_params(client, pkce()[1]))
        assert done.code and not done.login_shown


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("review2-traced")
    with serving(
        lambda port: build_app(tmp, port, OTEL_ENABLED=True, OTEL_EXPORTER="memory")
    ) as server:
        yield server


def test_a_callers_traceparent_cannot_switch_tracing_off(traced):
    """Attack: a caller sends ``traceparent`` with the sampled flag off (``-00``), e.g. on each
    password guess of a credential-stuffing run. The SDK's default sampler (parentbased_always_on)
    followed the caller's flag, so none of those requests left a span: the operator's traces
    missed exactly the requests the attacker chose. Fixed: the caller's trace id is kept (one
    trace), but whether a request is traced is the server's sampler's decision (every request
    unless the operator sets ``OTEL_TRACES_SAMPLER``)."""
    assert not os.environ.get("OTEL_TRACES_SAMPLER")  # the default, read when the app was built
    exporter = traced.app.extensions["idp.tracing"].exporter
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    for flags in ("00", "01"):
        exporter.clear()
        resp = requests.get(
            f"{traced.url}/.well-known/openid-configuration",
            headers={"traceparent": f"00-{trace_id}-{parent}-{flags}"},
        )
        assert resp.status_code == 200
        served = [s for s in exporter.get_finished_spans() if s.name.startswith("GET ")]
        assert len(served) == 1, (flags, [s.name for s in exporter.get_finished_spans()])
        assert format(served[0].context.trace_id, "032x") == trace_id  # still the caller's trace
        assert format(served[0].parent.span_id, "016x") == parent


@pytest.mark.skipif(
    not TEST_DB_URL.startswith("postgresql"),
    reason="SQLite serialises the two step-ups at BEGIN IMMEDIATE: no interleaving to race",
)
def test_two_step_ups_of_one_session_at_once_are_not_a_500(site):
    """Attack: one browser session at its second step in two tabs (two interactions sharing the
    session cookie) posts two recovery codes at once. Each step-up moved the session's key to
    its new cookie through the ORM; the second found the key already moved (StaleDataError, a
    500). Fixed: the key moves by a conditional UPDATE; the second tab gets a readable 409."""
    from tests.mfa.test_totp import enrol, login, mfa_page, post

    client, user = site.factory.gen_client(), site.factory.gen_user()
    enrolling = Browser(site.url)
    result, _ = login(site, enrolling, client, user, acr_values="mfa")
    _, codes, _ = enrol(enrolling, mfa_page(result))
    first = Browser(site.url)
    page_first = mfa_page(login(site, first, client, user, acr_values="mfa")[0])
    cookie = first.http.cookies.get("idp_session")
    assert cookie
    second = Browser(site.url)
    second.http.cookies.update(first.http.cookies)  # the same session, another interaction
    page_second = mfa_page(second.authorize(auth_params(client, pkce()[1], acr_values="mfa")))
    steps = [(first, page_first, codes[0]), (second, page_second, codes[1])]

    engine = create_engine(str(site.app.config["DATABASE_URL"]))
    database = engine.url.database or ""
    answers: list[requests.Response] = []
    try:
        with engine.connect() as holder, engine.connect() as watcher:
            holder.execute(
                text("SELECT 1 FROM login_sessions WHERE id_hash = :h FOR UPDATE"),
                {"h": sha256_hex(cookie)},
            )

            def step_up(tab: Browser, page: str, code: str) -> None:
                answers.append(post(tab, page, {"action": "recovery", "code": code}))

            threads = [threading.Thread(target=step_up, args=s) for s in steps]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while _waiting_on_locks(watcher, database) < 2 and time.monotonic() < deadline:
                watcher.rollback()
                time.sleep(0.05)
            both_waiting = _waiting_on_locks(watcher, database) >= 2
            holder.rollback()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        engine.dispose()
    assert both_waiting, "the two step-ups did not both reach the database"
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] in (302, 303) and statuses[1] == 409, [
        (a.status_code, a.text[:300]) for a in answers
    ]
    refused = next(a for a in answers if a.status_code == 409)
    assert "another window" in refused.text
