"""The console's log pages (``/admin/logs``): the tenant log filtered and paged through
``GET /api/v2/logs``, an event's page, the live tail's endpoint (only events after the id it is
given), and log streams created, paused, resumed and deleted through ``/api/v2/log-streams``."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from idp.audit import service as audit
from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.logstreams.models import LogStream
from tests.conftest import LiveServer, build_app, serving
from tests.console.helpers import admin, console_login
from tests.flows.test_accessibility import ARGS, CHROMIUM
from tests.helpers import Browser, hidden_inputs
from tests.management.conftest import ALL, Mgmt, grant

HOST = "logs.example.test"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose log streams may go to ``HOST`` (nothing is delivered: the delivery loop
    only runs under the WSGI entry point)."""
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, LOG_STREAM_HOSTS=HOST)) as server:
        yield server


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


@pytest.fixture
def console(op: Any) -> Browser:
    browser, _ = console_login(op, admin(op))
    return browser


def emit(op: Any, type_: str, count: int = 1, client_id: str = "cli_console") -> list[int]:
    """Tenant log events written as the server writes them, one transaction each."""
    ids = []
    with op.app.app_context():
        for n in range(count):
            with db.transaction() as s:
                audit.record(s, type_, f"test event {n}", audit.Origin("127.0.0.1", "tests"),
                             client_id=client_id)  # fmt: skip
            with db.transaction() as s:
                ids.append(int(s.scalar(select(func.max(LogEvent.id))) or 0))
    return ids


def shown(page: str) -> list[int]:
    """The log ids of the rows on a page or fragment, in order."""
    return [int(i) for i in re.findall(r'<tr data-log-id="(\d+)"', page)]


def types_shown(page: str) -> set[str]:
    rows = re.findall(r'<tr data-log-id="\d+">\s*<td>.*?</td>\s*<td><code>([^<]+)</code>', page,
                      flags=re.S)  # fmt: skip
    return set(rows)


def test_logs_filtered_by_type_client_and_date(op: Any, console: Browser) -> None:
    failures = emit(op, "login.failure", 2, client_id="cli_filtered")
    emit(op, "login.success", 2, client_id="cli_filtered")
    by_type = console.http.get(f"{op.url}/admin/logs", params={"type": "login.failure"}).text
    assert types_shown(by_type) == {"login.failure"}
    assert set(failures) <= set(shown(by_type))
    by_client = console.http.get(f"{op.url}/admin/logs", params={
        "client_id": "cli_filtered", "type": "login.success"}).text  # fmt: skip
    assert len(shown(by_client)) == 2 and types_shown(by_client) == {"login.success"}
    assert 'value="cli_filtered"' in by_client  # the filter kept in its box
    future = console.http.get(f"{op.url}/admin/logs", params={"date_from": "2999-01-01"}).text
    assert shown(future) == [] and "No event." in future
    bad = console.http.get(f"{op.url}/admin/logs", params={"date_from": "someday"})
    assert bad.status_code == 400 and "date_from" in bad.text and 'role="alert"' in bad.text


def test_paging_by_page_and_by_checkpoint(op: Any, console: Browser) -> None:
    ids = emit(op, "signup.success", 55, client_id="cli_pages")
    mine = {"client_id": "cli_pages"}
    first = console.http.get(f"{op.url}/admin/logs", params=mine).text
    assert shown(first) == ids[::-1][:50]
    older = html.unescape(re.search(r'href="([^"]+)">Older events', first).group(1))  # type: ignore[union-attr]
    assert shown(console.http.get(f"{op.url}{older}").text) == ids[::-1][50:]
    after = console.http.get(f"{op.url}/admin/logs", params={**mine, "from": ids[51]}).text
    assert shown(after) == [ids[54], ids[53], ids[52]]  # newest first
    newer = html.unescape(re.search(r'href="([^"]+)">Newer events', after).group(1))  # type: ignore[union-attr]
    assert f"from={ids[54]}" in newer and "client_id=cli_pages" in newer
    assert "No event yet after this one." in console.http.get(f"{op.url}{newer}").text


def test_an_event_has_its_page(op: Any, console: Browser) -> None:
    [log_id] = emit(op, "mfa.removed")
    page = console.http.get(f"{op.url}/admin/logs/{log_id}").text
    assert 'id="event-type">mfa.removed<' in page and "test event 0" in page
    assert console.http.get(f"{op.url}/admin/logs/999999999").status_code == 404


def test_the_live_tail_answers_only_newer_events(op: Any, console: Browser) -> None:
    before = emit(op, "login.success", 2)
    live = console.http.get(f"{op.url}/admin/logs/live").text
    newest = int(re.search(r'data-after="(\d+)"', live).group(1))  # type: ignore[union-attr]
    assert newest >= before[-1] and 'src="/static/console/logs.js"' in live
    assert f'href="/admin/logs?from={newest}">Newer events' in live  # without JavaScript
    assert "<script>" not in live  # no inline script (the CSP allows 'self' only)
    fresh = emit(op, "login.failure", 3)
    tail = console.http.get(f"{op.url}/admin/logs/tail", params={"after": before[0]})
    assert tail.status_code == 200 and tail.headers["X-Last-Log-Id"] == str(shown(tail.text)[0])
    rows = shown(tail.text)
    assert rows == sorted(rows, reverse=True) and min(rows) > before[0]
    assert set(fresh) | {before[1]} <= set(rows)
    tail = console.http.get(f"{op.url}/admin/logs/tail", params={"after": fresh[0]})
    assert fresh[0] not in shown(tail.text) and fresh[1] in shown(tail.text)
    filtered = console.http.get(f"{op.url}/admin/logs/tail", params={
        "after": before[0], "type": "login.failure"}).text  # fmt: skip
    assert shown(filtered) == fresh[::-1]
    nothing = console.http.get(f"{op.url}/admin/logs/tail", params={"after": fresh[-1],
                                                                    "type": "login.failure"})  # fmt: skip
    assert shown(nothing.text) == [] and nothing.headers["X-Last-Log-Id"] == str(fresh[-1])
    assert console.http.get(f"{op.url}/admin/logs/tail").status_code == 400
    signed_out = Browser(op.url).http.get(f"{op.url}/admin/logs/tail?after=1",
                                          allow_redirects=False)  # fmt: skip
    assert signed_out.status_code == 401 and shown(signed_out.text) == []


def test_the_tail_polls_do_not_keep_the_session_alive(
    op: Any, console: Browser, clock: Any
) -> None:
    """A live page left open ends with the console's idle time like any other page."""
    for _ in range(2):  # polls 400 s and 800 s after the last page: still signed in
        clock.advance(400)
        polled = console.http.get(f"{op.url}/admin/logs/tail", params={"after": "1"})
        assert polled.status_code == 200, polled.text[-300:]
        assert "idp_console" not in polled.headers.get("Set-Cookie", "")
    clock.advance(101)  # CONSOLE_IDLE_SECONDS after the last page, whatever the polls
    assert console.http.get(f"{op.url}/admin/logs/tail?after=1").status_code == 401
    clock.reset()


def test_a_log_stream_created_paused_resumed_and_deleted(
    op: Any, console: Browser, mgmt: Mgmt
) -> None:
    form = console.http.get(f"{op.url}/admin/logs/streams/new").text
    refused = console.http.post(f"{op.url}/admin/logs/streams/new", data={
        **hidden_inputs(form), "name": "siem", "endpoint": "https://evil.example/in",
        "content_type": "application/x-ndjson", "authorization": "s3cret-token"})  # fmt: skip
    assert refused.status_code == 400 and "LOG_STREAM_HOSTS" in refused.text
    assert "s3cret-token" not in refused.text and 'value="https://evil.example/in"' in refused.text
    not_an_id = console.http.post(f"{op.url}/admin/logs/streams/new", data={
        **hidden_inputs(form), "name": "siem", "endpoint": f"https://{HOST}/in",
        "content_type": "application/x-ndjson", "start_from": "soon"})  # fmt: skip
    assert not_an_id.status_code == 400 and "startFrom" in not_an_id.text
    made = console.http.post(f"{op.url}/admin/logs/streams/new", data={
        **hidden_inputs(form), "name": "siem", "endpoint": f"https://{HOST}/in",
        "content_type": "application/x-ndjson", "authorization": "s3cret-token",
        "start_from": "7"})  # fmt: skip
    assert made.status_code == 200 and 'id="signing-secret">' in made.text
    assert "the events after log id 7." in made.text
    stream_id = re.search(r'id="stream-id">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    held = mgmt.call("GET", f"/log-streams/{stream_id}").json()
    assert held["status"] == "active" and held["sink"]["httpEndpoint"] == f"https://{HOST}/in"
    assert held["checkpoint"] == "7"
    with op.app.app_context():  # the token is sent as a bearer token, and never shown
        sealed = db.session.get_one(LogStream, stream_id).auth_header
        assert sealed and services().box.decrypt(sealed) == b"Bearer s3cret-token"
    listed = console.http.get(f"{op.url}/admin/logs/streams").text
    assert "siem" in listed and "active" in listed and "s3cret-token" not in listed

    base = f"/admin/logs/streams/{stream_id}"
    page = console.http.get(f"{op.url}{base}").text
    paused = console.http.post(f"{op.url}{base}/status", data=hidden_inputs(page))
    assert 'id="stream-status">paused<' in paused.text and "Resume this stream" in paused.text
    assert mgmt.call("GET", f"/log-streams/{stream_id}").json()["status"] == "paused"
    stale = console.http.post(f"{op.url}{base}/status", data=hidden_inputs(page))
    assert stale.status_code == 412  # the page before the pause
    resumed = console.http.post(f"{op.url}{base}/status", data=hidden_inputs(paused.text))
    assert 'id="stream-status">active<' in resumed.text
    assert mgmt.call("GET", f"/log-streams/{stream_id}").json()["status"] == "active"

    with op.app.app_context():  # what the delivery loop leaves after failing
        stream = db.session.get_one(LogStream, stream_id)
        stream.status, stream.failures, stream.last_error = "suspended", 6, "HTTP 503 from in"
        db.session.commit()
    suspended = console.http.get(f"{op.url}{base}").text
    assert "Suspended after 6 failed deliveries" in suspended and "HTTP 503 from in" in suspended
    assert "HTTP 503 from in" in console.http.get(f"{op.url}/admin/logs/streams").text

    deleted = console.http.post(f"{op.url}{base}/delete", data=hidden_inputs(suspended))
    assert deleted.status_code == 200 and "No log stream." in deleted.text
    assert mgmt.call("GET", f"/log-streams/{stream_id}").status_code == 404


@pytest.mark.browser
def test_the_live_tail_prepends_new_events_in_a_browser(op: Any, console: Browser) -> None:
    """logs.js under the console's real CSP (no bypass): a new event appears on top."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    emit(op, "login.success")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = chromium.new_context()
            context.add_cookies([{"name": c.name, "value": c.value or "", "path": c.path,
                                  "domain": "127.0.0.1"} for c in console.http.cookies])  # fmt: skip
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and "Failed to load resource" not in m.text
                    else None
                ),
            )  # /favicon.ico
            page.goto(f"{op.url}/admin/logs/live?type=login.failure")
            page.get_by_role("button", name="Pause").wait_for()
            [new] = emit(op, "login.failure")
            emit(op, "login.success")  # filtered out
            page.locator(f'tr[data-log-id="{new}"].fresh').wait_for(timeout=15_000)
            assert page.locator("#log-rows tr").first.get_attribute("data-log-id") == str(new)
            assert "1 new event." in page.locator("#tail-status").inner_text()
            assert page.locator("#log-rows code", has_text="login.success").count() == 0
            assert errors == []  # no CSP refusal, no script error
        finally:
            chromium.close()


def audit_pages(op: Any, console: Browser, paths: list[str]) -> None:
    """axe (WCAG 2.1 AA, light and dark) and no sideways scrolling at 375 px on each console
    page, as tests/flows/test_accessibility.py audits the hosted pages."""
    from tests.flows.test_accessibility import AXE, Auditor

    if not os.path.exists(CHROMIUM) or not AXE.exists():
        pytest.skip("Debian's chromium or node_modules/axe-core is missing (make test)")
    from playwright.sync_api import sync_playwright

    auditor = Auditor()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = chromium.new_context(bypass_csp=True)  # axe is injected
            context.add_cookies([{"name": c.name, "value": c.value or "", "path": c.path,
                                  "domain": "127.0.0.1"} for c in console.http.cookies])  # fmt: skip
            page = context.new_page()
            for path in paths:
                page.goto(op.url + path)
                assert page.get_by_role("button", name="Sign out").count() == 1, path  # signed in
                auditor(page, path)
        finally:
            chromium.close()
    auditor.assert_clean()


@pytest.mark.browser
def test_the_log_pages_pass_the_accessibility_audit(op: Any, console: Browser) -> None:
    [log_id] = emit(op, "login.failure")
    made = console.http.post(f"{op.url}/admin/logs/streams/new", data={
        **hidden_inputs(console.http.get(f"{op.url}/admin/logs/streams/new").text),
        "name": "audited", "endpoint": f"https://{HOST}/in",
        "content_type": "application/json"})  # fmt: skip
    stream_id = re.search(r'id="stream-id">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    audit_pages(op, console, ["/admin/logs", f"/admin/logs/{log_id}", "/admin/logs/live",
                        "/admin/logs/streams", "/admin/logs/streams/new",
                        f"/admin/logs/streams/{stream_id}", "/admin/logs?date_from=x"])  # fmt: skip
