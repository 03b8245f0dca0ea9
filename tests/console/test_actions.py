"""The console's Actions pages (``/admin/actions``): the library, creating from a trigger's
template, the editor page (the trigger's schema for the bundled editor), drafts that leave
the deployed version live, deploy, the diff, rollback, write-only secrets, dependencies, the
test panel (commands, printed output, duration, errors) and the execution records. Each check
reads back what the management API (``/api/v2/actions``) then holds."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from idp.actions import build
from tests.actions.gated import CX, GATED_ACTION, REQUIREMENT, Gate
from tests.actions.test_lifecycle import idp
from tests.console.helpers import admin, console_login
from tests.helpers import Browser, hidden_inputs
from tests.management.conftest import ALL, Mgmt, grant

SECRET = "console-secret-9e8d7c6b"
CLAIM = (
    "def on_execute_post_login(event, api):\n"
    "    print('plan for', event.user.email)\n"
    "    api.access_token.set_custom_claim('https://example.com/plan', 'gold')\n"
)


pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture
def held(op: Any) -> Mgmt:
    """What the management API holds, read with a machine client's token."""
    return Mgmt(op, grant(op, ALL), ALL, [])


def textarea(page: str, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no textarea {name}"
    return html.unescape(found.group(1))


def alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]+)<', page)
    assert found, page[:2000]
    return html.unescape(found.group(1))


def create(op: Any, browser: Browser, name: str, trigger: str = "post-login") -> tuple[str, str]:
    """Create through the library's form; the action's id and its editor page."""
    library = browser.http.get(f"{op.url}/admin/actions").text
    made = browser.http.post(f"{op.url}/admin/actions", allow_redirects=False, data={
        "csrf_token": hidden_inputs(library)["csrf_token"], "name": name, "trigger": trigger})  # fmt: skip
    assert made.status_code == 303, made.text[:1000]
    action_id = made.headers["Location"].split("/admin/actions/")[1].split("?")[0]
    return action_id, browser.http.get(f"{op.url}{made.headers['Location']}").text


def tokens(page: str) -> dict[str, str]:
    """What every form of the editor page carries: the CSRF token and the action's ETag."""
    fields = hidden_inputs(page)
    return {"csrf_token": fields["csrf_token"], "etag": fields["etag"]}


def save(op: Any, browser: Browser, action_id: str, page: str, code: str, **extra: str) -> Any:
    form = tokens(page)
    return browser.http.post(f"{op.url}/admin/actions/{action_id}",
                             data={**form, "code": code, **extra})  # fmt: skip


def test_create_save_deploy_diff_and_roll_back(op: Any, held: Mgmt) -> None:
    browser, _ = console_login(op, admin(op))
    action_id, page = create(op, browser, "console-plan")
    # the trigger's template, and its schema for the editor in a JSON block (no inline script)
    assert textarea(page, "code").startswith("def on_execute_post_login(event, api):\n")
    schema = json.loads(html.unescape(re.search(  # type: ignore[union-attr]
        r'<script type="application/json" id="action-schema">(.*?)</script>', page, re.S
    ).group(1)))  # fmt: skip
    assert "access_token.set_custom_claim" in schema["api"]
    assert schema["event"]["sample"]["user"]["email"] == "jane@example.com"
    assert re.findall(r"<script(?![^>]*application/json)[^>]*>", page) == [
        '<script src="/static/console/editor.js" defer>'
    ]
    assert 'data-editor="python"' in page and "Never deployed" in page
    listed = browser.http.get(f"{op.url}/admin/actions").text
    row = re.search(r"console-plan</a></td>(.*?)</tr>", listed, re.S).group(1)  # type: ignore[union-attr]
    assert "post-login" in row and "never" in row and "Written here" in row
    idp(op, "marketplace", "install", "user-claims", "--name", "from-plugin",
        "--config", "namespace=https://example.com/")  # fmt: skip
    listed = browser.http.get(f"{op.url}/admin/actions").text
    row = re.search(r"from-plugin</a></td>(.*?)</tr>", listed, re.S).group(1)  # type: ignore[union-attr]
    assert "Marketplace" in row and "version 1" in row and ">deployed<" in row

    # deploy the first code, then a draft: the API holds it, version 1 stays live
    first = CLAIM
    deployed = save(op, browser, action_id, page, first, then="deploy")
    assert "Version 1 is deployed and live." in deployed.text, deployed.text[:2000]
    second = first.replace("'gold'", "'platinum'")
    saved = save(op, browser, action_id, deployed.text, second)
    assert "Draft saved." in saved.text and "the draft has changes not deployed" in saved.text
    held_action = held.call("GET", f"/actions/actions/{action_id}").json()
    assert held_action["code"] == second
    assert held_action["deployed_version"]["number"] == 1
    assert held_action["deployed_version"]["code"] == first

    # the diff between version 1 and the draft shows the changed line, both sides
    diff = browser.http.get(f"{op.url}/admin/actions/{action_id}/diff",
                            params={"version": "1", "against": "draft"}).text  # fmt: skip
    assert re.search(r'<tr class="removed">.*?gold', diff, re.S)
    assert re.search(r'<tr class="added">.*?platinum', diff, re.S)
    assert diff.count('<tr class="added">') == 1 and diff.count('<tr class="removed">') == 1
    assert '<td colspan="4">Old lines 1 to 3, new lines 1 to 3</td>' in diff  # the hunk, in words

    # deploy: version 2 live; the diff from the version before it
    page = browser.http.get(f"{op.url}/admin/actions/{action_id}").text
    resp = browser.http.post(f"{op.url}/admin/actions/{action_id}/deploy",
                             data={"csrf_token": hidden_inputs(page)["csrf_token"]})  # fmt: skip
    assert "Version 2 is deployed and live." in resp.text
    assert held.call("GET", f"/actions/actions/{action_id}").json()["deployed_version"][
        "number"] == 2  # fmt: skip
    previous = browser.http.get(f"{op.url}/admin/actions/{action_id}/diff",
                                params={"version": "2", "against": "previous"}).text  # fmt: skip
    assert "version 1 to version 2" in previous and "platinum" in previous

    # rollback: one click deploys version 1 again; the draft keeps the newer code
    rolled = browser.http.post(f"{op.url}/admin/actions/{action_id}/versions/1/rollback",
                               data={"csrf_token": hidden_inputs(resp.text)["csrf_token"]})  # fmt: skip
    assert "Rolled back: version 1 is live again." in rolled.text
    now = held.call("GET", f"/actions/actions/{action_id}").json()
    assert now["deployed_version"]["number"] == 1 and now["deployed_version"]["code"] == first
    assert now["code"] == second
    assert "version 1</td>" in browser.http.get(f"{op.url}/admin/actions").text

    # a stale form (rendered before the rollback's draft change elsewhere) is a 412 page
    held.call("PATCH", f"/actions/actions/{action_id}", json={"code": first})
    stale = save(op, browser, action_id, rolled.text, second)
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text


def test_a_syntax_error_is_refused_with_its_message_and_the_code_kept(op: Any, held: Mgmt) -> None:
    browser, _ = console_login(op, admin(op))
    action_id, page = create(op, browser, "console-broken")
    broken = "def on_execute_post_login(event, api):\n    if True\n        pass\n"
    refused = save(op, browser, action_id, page, broken)
    assert refused.status_code == 400
    assert alert(refused.text) == "syntax error on line 2: expected ':'"
    assert textarea(refused.text, "code") == broken  # what the admin typed is still there
    assert held.call("GET", f"/actions/actions/{action_id}").json()["code"] != broken

    # a name taken is the API's refusal on the library's form, the values kept
    library = browser.http.get(f"{op.url}/admin/actions").text
    again = browser.http.post(f"{op.url}/admin/actions", data={
        "csrf_token": hidden_inputs(library)["csrf_token"], "name": "console-broken",
        "trigger": "credentials-exchange"})  # fmt: skip
    assert again.status_code == 400 and "already exists" in alert(again.text)
    assert 'value="credentials-exchange" selected' in again.text
    # what is not there is the API's 404; a diff asked wrongly, a 400
    missing = browser.http.get(f"{op.url}/admin/actions/act_missing")
    assert missing.status_code == 404 and "no action named 'act_missing'" in html.unescape(
        missing.text
    )
    odd = browser.http.get(f"{op.url}/admin/actions/{action_id}/diff?version=x")
    assert odd.status_code == 400
    none = browser.http.get(f"{op.url}/admin/actions/{action_id}/diff?version=1")
    assert none.status_code == 404 and "has no version 1" in html.unescape(none.text)


def test_secrets_are_write_only_and_the_test_panel_shows_commands_and_output(
    op: Any, held: Mgmt
) -> None:
    browser, _ = console_login(op, admin(op))
    action_id, page = create(op, browser, "console-tested")
    code = CLAIM + "    print('key', event.secrets.API_KEY)\n"
    page = save(op, browser, action_id, page, code).text

    form = tokens(page)
    set_one = browser.http.post(f"{op.url}/admin/actions/{action_id}/secrets",
                                data={**form, "name": "API_KEY", "value": SECRET})  # fmt: skip
    assert "Secrets saved." in set_one.text and "<code>API_KEY</code>" in set_one.text
    assert SECRET not in set_one.text
    assert [s["name"] for s in held.call("GET", f"/actions/actions/{action_id}").json()[
        "secrets"]] == ["API_KEY"]  # fmt: skip

    # the test panel: the saved draft against the published sample, the secret redacted
    sample = textarea(set_one.text, "payload")
    assert json.loads(sample)["user"]["email"] == "jane@example.com"
    ran = browser.http.post(f"{op.url}/admin/actions/{action_id}/test", data={
        "csrf_token": hidden_inputs(set_one.text)["csrf_token"], "payload": sample})  # fmt: skip
    assert ran.status_code == 200, ran.text[:2000]
    commands = re.search(r'id="test-commands">(.*?)</table>', ran.text, re.S).group(1)  # type: ignore[union-attr]
    assert "api.access_token.set_custom_claim" in commands
    assert "https://example.com/plan" in html.unescape(commands) and "gold" in commands
    logs = html.unescape(re.search(r'id="test-logs">(.*?)</pre>', ran.text, re.S).group(1))  # type: ignore[union-attr]
    assert "plan for jane@example.com" in logs and "[secret API_KEY]" in logs
    assert re.search(r'id="test-duration">\d+(\.\d+)?</span> ms', ran.text)
    assert "No error." in ran.text and SECRET not in ran.text
    # the run is an execution record, with p50/p99 over the records listed
    records = browser.http.get(f"{op.url}/admin/actions/{action_id}").text
    assert "success (test)" in records and "Over the 1 latest records listed: p50" in records

    # an event of the admin's own; an error of the action is shown as the run's error
    fails = CLAIM + "    raise RuntimeError('no plan for ' + event.user.email)\n"
    page = save(op, browser, action_id, records, fails).text
    ran = browser.http.post(f"{op.url}/admin/actions/{action_id}/test", data={
        "csrf_token": hidden_inputs(page)["csrf_token"],
        "payload": json.dumps({"user": {"email": "max@example.com"}})})  # fmt: skip
    error = html.unescape(re.search(r'id="test-run-error"[^>]*>(.*?)</pre>', ran.text, re.S)  # type: ignore[union-attr]
                          .group(1))  # fmt: skip
    assert "RuntimeError" in error and "no plan for max@example.com" in error
    not_json = browser.http.post(f"{op.url}/admin/actions/{action_id}/test", data={
        "csrf_token": hidden_inputs(page)["csrf_token"], "payload": "{user"})  # fmt: skip
    assert not_json.status_code == 400 and alert(not_json.text).startswith("The event is not JSON")
    assert textarea(not_json.text, "payload") == "{user"

    # a refused secret keeps its name, never its value; removing one lists it no more
    form = tokens(ran.text)
    bad = browser.http.post(f"{op.url}/admin/actions/{action_id}/secrets",
                            data={**form, "name": "9bad", "value": SECRET})  # fmt: skip
    assert bad.status_code == 400 and SECRET not in bad.text
    gone = browser.http.post(f"{op.url}/admin/actions/{action_id}/secrets",
                             data={**form, "remove": "API_KEY"})  # fmt: skip
    assert "Secrets saved." in gone.text and "No secret." in gone.text
    assert held.call("GET", f"/actions/actions/{action_id}").json()["secrets"] == []
    assert not [text for text in held.seen if SECRET in text]

    # deleting: a bound action only with force (which unbinds it), as the API says
    held.call("POST", f"/actions/actions/{action_id}/deploy")
    bound = held.call("POST", "/actions/triggers/post-login/bindings", json={"action": action_id})
    assert bound.status_code == 201, bound.text
    page = browser.http.get(f"{op.url}/admin/actions/{action_id}").text
    kept = browser.http.post(f"{op.url}/admin/actions/{action_id}/delete", data=tokens(page))
    assert kept.status_code == 409 and "unbind it first" in html.unescape(kept.text)
    gone = browser.http.post(f"{op.url}/admin/actions/{action_id}/delete",
                             data={**tokens(page), "force": "on"})  # fmt: skip
    assert gone.url.endswith("/admin/actions") and "console-tested" not in gone.text
    assert held.call("GET", f"/actions/actions/{action_id}").status_code == 404
    assert held.call("GET", "/actions/triggers/post-login/bindings").json()["bindings"] == []


def test_dependencies_are_saved_to_the_draft_and_their_build_shown(
    op: Any, held: Mgmt, gate: Gate
) -> None:
    browser, _ = console_login(op, admin(op))
    action_id, page = create(op, browser, "console-deps", trigger=CX)
    bad = browser.http.post(f"{op.url}/admin/actions/{action_id}/dependencies",
                            data={**tokens(page), "dependencies": "not a package"})  # fmt: skip
    assert bad.status_code == 400 and "not a plain requirement line" in alert(bad.text)
    assert textarea(bad.text, "dependencies") == "not a package"

    page = save(op, browser, action_id, page, GATED_ACTION).text
    saved = browser.http.post(f"{op.url}/admin/actions/{action_id}/dependencies",
                              data={**tokens(page), "dependencies": f"{REQUIREMENT}\r\n"})  # fmt: skip
    assert "Dependencies saved to the draft" in saved.text
    assert textarea(saved.text, "dependencies") == REQUIREMENT
    assert held.call("GET", f"/actions/actions/{action_id}").json()["dependencies"] == [
        {"name": "idp-gate-dep", "version": "1.0"}]  # fmt: skip

    # deployed, the version builds while pip runs (the gate shut), then fails and says why
    building = browser.http.post(f"{op.url}/admin/actions/{action_id}/deploy",
                                 data={"csrf_token": tokens(saved.text)["csrf_token"]})  # fmt: skip
    assert "Version 1 is building" in building.text
    assert 'id="build-status">building<' in building.text
    gate.open("fail: no such package today")
    assert build.wait(300), "the build did not end"
    failed = browser.http.get(f"{op.url}/admin/actions/{action_id}").text
    assert 'id="build-status">failed<' in failed and "Never deployed" in failed
    why = html.unescape(re.search(r"<summary>Why it failed</summary>(.*?)</details>", failed,
                                  re.S).group(1))  # type: ignore[union-attr]  # fmt: skip
    assert "refused by the gate" in why and "no such package today" in why
    assert "<code>idp-gate-dep==1.0</code>" in failed
