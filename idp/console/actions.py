"""Actions: the library, the code editor, drafts, deploy, versions with a diff and rollback,
secrets (write-only), dependencies and their build status, the test panel, execution records.

Every read and write is one ``/api/v2/actions`` operation (``idp.management.actions``,
``bindings``): the console adds only presentation. The editor page is a plain form whose
``<textarea>`` the bundled CodeMirror editor (``idp/static/console/editor.js``, built from
``console/editor/src`` by ``make console-assets``) enhances, fed the trigger's published schema
(``GET /actions/triggers``) through a JSON ``<script>`` block, never an executable inline one.
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

PER_PAGE = 100
_SPEC = re.compile(r"[<>=!~]")
_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


# ----------------------------------------------------------------------------- reading
def _pages(path: str, key: str, **query: str) -> list[dict[str, Any]]:
    """Every item of an Auth0 ``{<key>, total, page, per_page}`` list, page by page."""
    rows: list[dict[str, Any]] = []
    number = 0
    while True:
        answer = api("GET", path, query={**query, "per_page": str(PER_PAGE), "page": str(number)})
        if not answer.ok or not answer.data[key]:
            return rows
        rows += answer.data[key]
        if len(rows) >= answer.data["total"]:
            return rows
        number += 1


def _triggers() -> dict[str, dict[str, Any]]:
    answer = api("GET", "/actions/triggers")
    return {t["id"]: t for t in answer.data["triggers"]} if answer.ok else {}


def template_code(trigger: dict[str, Any]) -> str:
    """A new action's starting code: the trigger's entry point, what it is for, what it gets."""
    schema = trigger["schema"]
    about = [
        trigger["description"],
        "event: " + ", ".join(schema["event"]["fields"]),
        "api: " + ", ".join(schema["api"]),
    ]
    comment = "\n".join(
        "    # " + line
        for text in about
        for line in textwrap.wrap(text, 84, break_on_hyphens=False)
    )
    return f"def {schema['entry_points'][0]}(event, api):\n{comment}\n    pass\n"


def percentile(durations: list[float], fraction: float) -> float | None:
    """Nearest rank over the listed records (the API's stats cover live runs only)."""
    ordered = sorted(durations)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


def diff_rows(old: str, new: str) -> list[dict[str, Any]]:
    """difflib's unified diff as rows: ``kind`` (hunk, removed, added, same) with the line's
    number on each side, for a table a screen reader can read line by line."""
    rows: list[dict[str, Any]] = []
    old_no = new_no = 0
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
    for line in list(lines)[2:]:  # past the ---/+++ file header
        if (hunk := _HUNK.match(line)) is not None:  # said in words, not as @@ -1,3 +1,4 @@
            old_no, new_no = int(hunk.group(1)), int(hunk.group(3))
            text = f"Old {_span(old_no, hunk.group(2))}, new {_span(new_no, hunk.group(4))}"
            rows.append({"kind": "hunk", "text": text, "old": None, "new": None})
        elif line.startswith("-"):
            rows.append({"kind": "removed", "text": line[1:], "old": old_no, "new": None})
            old_no += 1
        elif line.startswith("+"):
            rows.append({"kind": "added", "text": line[1:], "old": None, "new": new_no})
            new_no += 1
        else:
            rows.append({"kind": "same", "text": line[1:], "old": old_no, "new": new_no})
            old_no, new_no = old_no + 1, new_no + 1
    return rows


def _span(start: int, count: str | None) -> str:
    size = 1 if count is None else int(count)
    if size == 0:
        return "lines: none"
    return f"line {start}" if size == 1 else f"lines {start} to {start + size - 1}"


def dependency_lines(dependencies: list[dict[str, str]]) -> str:
    """The API's ``[{name, version}]`` as requirement lines (``name==1.2``, ``name>=2``)."""
    lines = []
    for dep in dependencies:
        version = dep["version"]
        if version == "latest":
            lines.append(dep["name"])
        else:
            lines.append(dep["name"] + (version if _SPEC.match(version) else f"=={version}"))
    return "\n".join(lines)


def parse_dependencies(text: str) -> list[dict[str, str]]:
    """Requirement lines back into the API's shape; the API judges what they say."""
    deps = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        match = _SPEC.search(line)
        if match is None:
            deps.append({"name": line, "version": "latest"})
            continue
        name, spec = line[: match.start()].strip(), line[match.start() :].strip()
        deps.append({"name": name, "version": spec[2:] if spec.startswith("==") else spec})
    return deps


# ----------------------------------------------------------------------------- library
@bp.get("/actions")
@signed_in
def actions_library() -> Response:
    return _library()


def _library(status: int = 200, form: dict[str, str] | None = None,
             error: str | None = None) -> Response:  # fmt: skip
    triggers = _triggers()
    installed = {a["id"] for a in _pages("/actions/actions", "actions", installed="true")}
    return page("console/actions.html", status, actions=_pages("/actions/actions", "actions"),
                installed=installed, triggers=triggers, error=error,
                form=form or {"name": "", "trigger": "post-login"})  # fmt: skip


@bp.post("/actions")
@signed_in
def create_action() -> Response:
    form = {
        "name": request.form.get("name", "").strip(),
        "trigger": request.form.get("trigger", ""),
    }
    trigger = _triggers().get(form["trigger"])
    if trigger is None:
        return _library(400, form, "Choose a trigger from the list.")
    body = {"name": form["name"], "trigger": trigger["id"], "code": template_code(trigger)}
    answer = api("POST", "/actions/actions", json_body=body)
    if not answer.ok:
        return _library(400, form, answer.message)
    return redirect(f"/admin/actions/{answer.data['id']}?created=1", code=303)


# ------------------------------------------------------------------------------ editor
def _editor(action_id: str, status: int = 200, **context: Any) -> Response:
    """The action's page; ``context`` keeps what a refused form sent (never a secret)."""
    answer = api("GET", f"/actions/actions/{action_id}")
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not available", answer.message)
    action = answer.data
    trigger = _triggers()[action["supported_triggers"][0]["id"]]
    schema = trigger["schema"]
    versions = _pages(f"/actions/actions/{action_id}/versions", "versions")
    runs = api("GET", f"/actions/actions/{action_id}/executions", query={"limit": "50"})
    executions = runs.data["executions"] if runs.ok else []
    durations = [e["duration_ms"] for e in executions]
    values = {
        "code": action["code"],
        "dependencies": dependency_lines(action["dependencies"]),
        "payload": json.dumps(schema["event"]["sample"], indent=2),
        **context,
    }
    return page("console/actions_edit.html", status, action=action, etag=answer.etag,
                trigger=trigger, versions=versions, executions=executions,
                p50=percentile(durations, 0.50), p99=percentile(durations, 0.99),
                editor_schema={"event": schema["event"], "api": schema["api"]},
                notice=_notice(),
                values=values)  # fmt: skip


_NOTICES = {
    "created": "Created: a draft that runs nowhere until you deploy it.",
    "saved": "Draft saved. Live traffic still runs the deployed version.",
    "deployed": "Version {} is deployed and live.",
    "building": "Version {} is building: it goes live once its dependencies are installed, "
    "and the version before it serves meanwhile.",
    "rolledback": "Rolled back: version {} is live again.",
    "secrets": "Secrets saved.",
    "dependencies": "Dependencies saved to the draft: they are installed at the next deploy.",
}


def _notice() -> str:
    """What the redirect after a write says (``?deployed=3``); digits only are shown."""
    for key, text in _NOTICES.items():
        if key in request.args:
            value = request.args[key]
            return text.format(value if value.isdigit() else "")
    return ""


@bp.get("/actions/<action_id>")
@signed_in
def action_page(action_id: str) -> Response:
    return _editor(action_id)


@bp.post("/actions/<action_id>")
@signed_in
def save_draft(action_id: str) -> Response:
    """Save the draft; ``then=deploy`` (the second button) also deploys what was saved."""
    code = request.form.get("code", "").replace("\r\n", "\n")
    answer = api("PATCH", f"/actions/actions/{action_id}", json_body={"code": code},
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return _editor(action_id, 400, code=code, code_error=answer.message)
    if request.form.get("then") != "deploy":
        return redirect(f"/admin/actions/{action_id}?saved=1", code=303)
    return _deploy(action_id)


@bp.post("/actions/<action_id>/deploy")
@signed_in
def deploy(action_id: str) -> Response:
    return _deploy(action_id)


def _deploy(action_id: str) -> Response:
    answer = api("POST", f"/actions/actions/{action_id}/deploy")
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return _editor(action_id, 400, code_error=answer.message)
    said = "building" if answer.data["status"] == "building" else "deployed"
    return redirect(f"/admin/actions/{action_id}?{said}={answer.data['number']}", code=303)


@bp.post("/actions/<action_id>/versions/<int:number>/rollback")
@signed_in
def rollback(action_id: str, number: int) -> Response:
    answer = api("POST", f"/actions/actions/{action_id}/versions/{number}/deploy", json_body={})
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not rolled back", answer.message)
    return redirect(f"/admin/actions/{action_id}?rolledback={number}", code=303)


@bp.post("/actions/<action_id>/delete")
@signed_in
def delete(action_id: str) -> Response:
    """Auth0's rule: a bound action goes only with ``force`` (which unbinds it first)."""
    force = "true" if request.form.get("force") == "on" else "false"
    answer = api("DELETE", f"/actions/actions/{action_id}", query={"force": force},
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect("/admin/actions", code=303)


@bp.get("/actions/<action_id>/diff")
@signed_in
def diff(action_id: str) -> Response:
    """A version against the draft (``against=draft``) or against the version before it."""
    number = request.args.get("version", "")
    against = request.args.get("against", "draft")
    if not number.isdigit() or against not in ("draft", "previous"):
        return refused(400, "Not a diff", "Choose a version and draft or previous.")
    action = api("GET", f"/actions/actions/{action_id}")
    version = api("GET", f"/actions/actions/{action_id}/versions/{number}")
    for answer in (action, version):
        if (other := stale_or_refused(answer)) is not None:
            return other
    old, new = version.data, {"number": None, "code": action.data["code"]}
    if against == "previous":
        earlier = api("GET", f"/actions/actions/{action_id}/versions/{int(number) - 1}")
        if not earlier.ok:
            return refused(404, "No earlier version", f"Version {number} is the oldest kept.")
        old, new = earlier.data, version.data
    return page("console/actions_diff.html", action=action.data, old=old, new=new,
                rows=diff_rows(old["code"], new["code"]))  # fmt: skip


# ------------------------------------------------------------- secrets and dependencies
@bp.post("/actions/<action_id>/secrets")
@signed_in
def secrets(action_id: str) -> Response:
    """Set (name and value) or remove (``remove``: a name) one secret. The API takes the whole
    list: every other secret is listed by name without a value, which keeps it as it is."""
    current = api("GET", f"/actions/actions/{action_id}")
    if (other := stale_or_refused(current)) is not None:
        return other
    names = [s["name"] for s in current.data["secrets"]]
    removing = request.form.get("remove", "")
    name = request.form.get("name", "").strip()
    body: list[dict[str, str]] = [{"name": n} for n in names if n not in (removing, name)]
    if not removing:
        body.append({"name": name, "value": request.form.get("value", "")})
    answer = api("PATCH", f"/actions/actions/{action_id}", json_body={"secrets": body},
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:  # the value is never sent back to the browser, even refused
        return _editor(action_id, 400, secret_name=name, secret_error=answer.message)
    return redirect(f"/admin/actions/{action_id}?secrets=1", code=303)


@bp.post("/actions/<action_id>/dependencies")
@signed_in
def dependencies(action_id: str) -> Response:
    text = request.form.get("dependencies", "")
    answer = api("PATCH", f"/actions/actions/{action_id}",
                 json_body={"dependencies": parse_dependencies(text)},
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return _editor(action_id, 400, dependencies=text, dependencies_error=answer.message)
    return redirect(f"/admin/actions/{action_id}?dependencies=1", code=303)


# ----------------------------------------------------------------------------- testing
@bp.post("/actions/<action_id>/test")
@signed_in
def test_draft(action_id: str) -> Response:
    """Run the saved draft once against the event in the form (the trigger's sample by
    default); the page shows the commands, the printed output, the duration and the error."""
    text = request.form.get("payload", "")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        return _editor(action_id, 400, payload=text, test_error=f"The event is not JSON: {exc}")
    if not isinstance(payload, dict):
        return _editor(action_id, 400, payload=text, test_error="The event is a JSON object.")
    answer = api("POST", f"/actions/actions/{action_id}/test", json_body={"payload": payload})
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return _editor(action_id, 400, payload=text, test_error=answer.message)
    result = answer.data["payload"]
    commands = [
        {"op": c.get("op", ""), "args": json.dumps({k: v for k, v in c.items() if k != "op"})}
        for c in result["commands"]
    ]
    return _editor(action_id, payload=text, test=result, test_commands=commands)
