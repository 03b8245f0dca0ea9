"""The console's flows (``/admin/flows``): each trigger's chain drawn as a pipeline beside its
library of deployed actions; adding at a position, moving up and down, ``allowed_to_fail`` and
removing are each one single-binding operation of the management API, checked against what the
API then holds; a form from before a change is refused (412), a refusal shown on the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.actions.test_lifecycle import idp
from tests.console.helpers import admin, console_login
from tests.flows.test_accessibility import browser as browser
from tests.helpers import hidden_inputs
from tests.management.conftest import Mgmt, grant

NOOP = "def on_execute_post_login(event, api):\n    pass\n"
PL = "post-login"


@pytest.fixture(autouse=True)
def fresh_chain(op: Any) -> Any:
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()  # a chain left bound would run on other tests' logins


def form_of(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to ``action``."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>',
                      page, re.S)  # fmt: skip
    assert match, f"no form posting to {action}"
    return hidden_inputs(match.group(1))


def deploy(op: Any, tmp_path: Path, *names: str) -> dict[str, str]:
    """Deployed post-login actions that do nothing: name -> id."""
    code = tmp_path / "noop.py"
    code.write_text(NOOP)
    return {n: idp(op, "actions", "deploy", str(code), "--name", n, "--trigger", PL)["action"]["id"]
            for n in names}  # fmt: skip


def bindings(api: Mgmt) -> list[tuple[str, bool]]:
    """The chain as the management API holds it: (name, allowed_to_fail), in order."""
    resp = api.call("GET", f"/actions/triggers/{PL}/bindings")
    assert resp.status_code == 200, resp.text
    return [(b["action"]["name"], b["allowed_to_fail"]) for b in resp.json()["bindings"]]


def binding_id(api: Mgmt, name: str) -> str:
    resp = api.call("GET", f"/actions/triggers/{PL}/bindings/{name}")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["id"])


def test_the_triggers_are_listed_with_their_chain_sizes(op: Any, tmp_path: Path) -> None:
    browser, _ = console_login(op, admin(op))
    deploy(op, tmp_path, "one")
    idp(op, "actions", "bind", "one", "--trigger", PL)
    page = browser.http.get(f"{op.url}/admin/flows").text
    for trigger in (PL, "credentials-exchange", "pre-user-registration", "post-change-password",
                    "send-phone-message"):  # fmt: skip
        assert f'<a href="/admin/flows/{trigger}">{trigger}</a>' in page
    row = re.search(rf'flows/{PL}">{PL}</a></th>\s*<td>[^<]*</td>\s*<td>(\d+)</td>', page)
    assert row and row.group(1) == "1", page
    assert browser.http.get(f"{op.url}/admin/flows/no-such-trigger").status_code == 404
    # a trigger that always fails closed offers no allowed_to_fail
    cx = tmp_path / "cx.py"
    cx.write_text("def on_execute_credentials_exchange(event, api):\n    pass\n")
    idp(op, "actions", "deploy", str(cx), "--name", "cx", "--trigger", "credentials-exchange")
    idp(op, "actions", "bind", "cx", "--trigger", "credentials-exchange")
    closed = browser.http.get(f"{op.url}/admin/flows/credentials-exchange").text
    assert "Every action of this trigger fails closed." in closed and ">cx</a>" in closed
    assert 'name="allowed_to_fail"' not in closed and "Remove<span" in closed


def test_a_chain_is_edited_one_binding_at_a_time(op: Any, tmp_path: Path) -> None:
    browser, _ = console_login(op, admin(op))  # before anything is bound to post-login
    api = Mgmt(op, grant(op, ["read:actions"]), ["read:actions"], [])
    ids = deploy(op, tmp_path, "first", "second", "third")
    idp(op, "actions", "bind", "first", "--trigger", PL)
    idp(op, "actions", "bind", "second", "--trigger", PL)
    url = f"{op.url}/admin/flows/{PL}"

    page = browser.http.get(url).text
    # the pipeline: Start, the steps in order (each linking to its action's page), End
    drawn = re.findall(r'class="terminal">(\w+)<|<a href="/admin/actions/([^"]+)">', page)
    assert [t or i for t, i in drawn][:4] == ["Start", ids["first"], ids["second"], "End"]
    library = page.split('id="library-title"', 1)[1]
    assert f'data-action="{ids["third"]}"' in library and "In the chain." in library
    assert '<script src="/static/console/flows.js" defer></script>' in page

    # add "third" between the two, from its library form
    add = f"/admin/flows/{PL}/bindings"
    done = browser.http.post(f"{op.url}{add}",
                             data={**form_of(page, add), "position": "1"})  # fmt: skip
    assert done.status_code == 200 and "Added to the chain." in done.text
    assert bindings(api) == [("first", False), ("third", False), ("second", False)]

    # move it down, then up: the buttons' own positions
    third = binding_id(api, "third")
    move = f"/admin/flows/{PL}/bindings/{third}/position"
    assert 'name="position" value="0">Move up' in done.text
    moved = browser.http.post(f"{op.url}{move}", data={**form_of(done.text, move),
                                                        "position": "2"})  # fmt: skip
    assert moved.status_code == 200 and "Moved." in moved.text
    assert bindings(api) == [("first", False), ("second", False), ("third", False)]
    before = moved.text  # the page as it stood: kept to post a stale form later
    moved = browser.http.post(f"{op.url}{move}", data={**form_of(before, move),
                                                        "position": "1"})  # fmt: skip
    assert moved.status_code == 200
    assert bindings(api) == [("first", False), ("third", False), ("second", False)]

    # a form from before that move: "second" has moved meanwhile, its ETag is stale
    second = binding_id(api, "second")
    stale = f"/admin/flows/{PL}/bindings/{second}/remove"
    refused = browser.http.post(f"{op.url}{stale}", data=form_of(before, stale))
    assert refused.status_code == 412 and "Changed meanwhile" in refused.text
    assert bindings(api) == [("first", False), ("third", False), ("second", False)]

    # allowed_to_fail, ticked then unticked (an unticked box sends nothing)
    toggle = f"/admin/flows/{PL}/bindings/{third}/allowed-to-fail"
    saved = browser.http.post(f"{op.url}{toggle}", data={**form_of(moved.text, toggle),
                                                          "allowed_to_fail": "on"})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text and "may fail" in saved.text
    assert re.search(rf'id="atf-{third}" name="allowed_to_fail" checked', saved.text)
    assert bindings(api) == [("first", False), ("third", True), ("second", False)]
    saved = browser.http.post(f"{op.url}{toggle}", data=form_of(saved.text, toggle))
    assert bindings(api) == [("first", False), ("third", False), ("second", False)]

    # remove: the action stays in the library, with its Add form again
    remove = f"/admin/flows/{PL}/bindings/{third}/remove"
    removed = browser.http.post(f"{op.url}{remove}", data=form_of(saved.text, remove))
    assert removed.status_code == 200 and "Removed from the chain." in removed.text
    assert bindings(api) == [("first", False), ("second", False)]
    assert f'data-action="{ids["third"]}"' in removed.text.split('id="library-title"', 1)[1]

    # the API's refusal is shown on the page (a bound action cannot be added twice)
    twice = browser.http.post(f"{op.url}{add}", data={**form_of(removed.text, add),
                                                       "action": ids["first"]})  # fmt: skip
    alert = re.search(r'role="alert"[^>]*>([^<]+)<', twice.text)
    assert twice.status_code == 400 and alert and "already bound" in alert.group(1)
    assert bindings(api) == [("first", False), ("second", False)]

    # every change was one single-binding operation, named in the tenant log with the admin
    from sqlalchemy import select

    from idp.audit.models import LogEvent
    from idp.extensions import db

    with op.app.app_context():
        rows = db.session.scalars(select(LogEvent).where(LogEvent.type == "management.write")
                                  .order_by(LogEvent.id)).all()  # fmt: skip
        ops = [e.details["operation"] for e in rows if e.details.get("resource") == "actions"
               and e.details.get("admin")]  # fmt: skip
    assert ops[-6:] == ["insert_binding", "update_binding", "update_binding", "update_binding",
                        "update_binding", "remove_binding"]  # fmt: skip


def test_a_forged_post_is_refused(op: Any, tmp_path: Path) -> None:
    browser, _ = console_login(op, admin(op))
    ids = deploy(op, tmp_path, "solo")
    resp = browser.http.post(f"{op.url}/admin/flows/{PL}/bindings", data={"action": ids["solo"]})
    assert resp.status_code == 400
    api = Mgmt(op, grant(op, ["read:actions"]), ["read:actions"], [])
    assert bindings(api) == []


@pytest.mark.browser
def test_dragging_builds_the_chain_in_a_browser(op: Any, browser: Any, tmp_path: Path) -> None:
    """Under the console's CSP (no CSP violation): a library action dragged into the chain's
    first gap is added there, then a step dragged above another moves; each drop is the same
    single-binding operation as the buttons."""
    from tests.console.test_console_browser import sign_in
    from tests.flows.test_accessibility import DESKTOP

    user, api = admin(op), Mgmt(op, grant(op, ["read:actions"]), ["read:actions"], [])
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Security Policy" in m.text else None)
    page.on("pageerror", lambda e: refusals.append(str(e)))
    sign_in(page, op, user)
    ids = deploy(op, tmp_path, "alpha", "beta")
    idp(op, "actions", "bind", "alpha", "--trigger", PL)
    page.goto(f"{op.url}/admin/flows/{PL}")
    page.get_by_text("Drag an action from the library").wait_for()  # the script ran

    page.drag_and_drop(f'.library [data-action="{ids["beta"]}"]', '#chain .slot[data-position="0"]')
    page.get_by_text("Added to the chain.").wait_for()
    assert bindings(api) == [("beta", False), ("alpha", False)]

    alpha = binding_id(api, "alpha")
    page.drag_and_drop(f"#binding-{alpha}", '#chain .slot[data-position="0"]')
    page.get_by_text("Moved.").wait_for()
    assert bindings(api) == [("alpha", False), ("beta", False)]
    steps = page.locator("#chain .card h3 a").all_inner_texts()
    assert steps == ["alpha", "beta"]

    # another admin reorders meanwhile: this page's ETags are stale, the drop is refused
    idp(op, "actions", "move", "alpha", "--trigger", PL, "--position", "1")
    beta = binding_id(api, "beta")
    page.drag_and_drop(f"#binding-{beta}", '#chain .slot[data-position="0"]')
    page.get_by_role("heading", name="Changed meanwhile").wait_for()
    assert bindings(api) == [("beta", False), ("alpha", False)]
    assert refusals == []
    context.close()


@pytest.mark.browser
def test_the_flows_and_marketplace_pages_pass_the_audit(
    op: Any, browser: Any, tmp_path: Path
) -> None:
    from tests.console.test_console_browser import sign_in
    from tests.flows.test_accessibility import DESKTOP, Auditor

    user, audit = admin(op), Auditor()
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)  # to inject axe
    page = context.new_page()
    sign_in(page, op, user)
    deploy(op, tmp_path, "alpha", "beta")
    idp(op, "actions", "bind", "alpha", "--trigger", PL)
    idp(op, "actions", "bind", "beta", "--trigger", PL)
    deploy(op, tmp_path, "gamma")
    page.goto(f"{op.url}/admin/flows")
    audit(page, "flows")
    page.get_by_role("link", name=PL, exact=True).click()
    audit(page, "a chain")
    page.goto(f"{op.url}/admin/marketplace")
    audit(page, "marketplace")
    page.get_by_role("link", name="Send logins to a workflow webhook").click()
    audit(page, "a plugin's form")
    page.get_by_label("url (required)").fill("ftp://hooks.example.test/x")
    page.get_by_role("button", name="Install and deploy").click()
    page.get_by_role("alert").wait_for()
    audit(page, "a plugin's form, refused")
    assert audit.failures == [], "\n\n".join(audit.failures)
    context.close()
