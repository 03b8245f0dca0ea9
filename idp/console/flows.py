"""Flows: per trigger, the ordered chain of bound actions drawn as a pipeline (Start, each
action in the order it runs, End) beside the library of the trigger's deployed actions.

Each change is one single-binding operation of the management API, never a rewrite of the
whole list: add at a position (``POST .../bindings``), move (``PATCH .../bindings/{id}``
with ``position``), ``allowed_to_fail`` (the same ``PATCH``) and remove (``DELETE``). A
binding's form carries the binding's ETag as it was shown, sent as ``If-Match``: a chain
changed meanwhile (another admin moved or removed a link, which moves this one's position) is
a 412 page, not a surprise. Buttons are the no-JavaScript and keyboard path; with JavaScript
(``static/console/flows.js``) dragging a card or a library action posts the same forms.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

DONE = {
    "added": "Added to the chain.",
    "moved": "Moved.",
    "removed": "Removed from the chain.",
    "saved": "Saved.",
    "installed": "Installed from the marketplace, deployed and added at the end of the chain.",
    "deployed": "Installed from the marketplace and deployed; add it from the library.",
}


def _position(name: str = "position") -> int | str | None:
    """The form's 0-based position as the API takes it (an integer; empty: the end). Anything
    else is passed on as it is, for the API to refuse with its own message."""
    value = request.form.get(name, "").strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


def _trigger(trigger_id: str) -> dict[str, Any] | None:
    answer = api("GET", "/actions/triggers")
    triggers = answer.data["triggers"] if answer.ok else []
    return next((t for t in triggers if t["id"] == trigger_id), None)


def _chain(trigger_id: str) -> list[dict[str, Any]]:
    """The bindings in the order they run, each with the ETag its forms send back."""
    answer = api("GET", f"/actions/triggers/{trigger_id}/bindings", query={"per_page": "100"})
    chain = []
    for binding in answer.data["bindings"] if answer.ok else []:
        one = api("GET", f"/actions/triggers/{trigger_id}/bindings/{binding['id']}")
        if one.ok:
            chain.append({**one.data, "etag": one.etag})
    return chain


def _chain_page(trigger_id: str, status: int = 200, error: str | None = None,
                form: dict[str, str] | None = None) -> Response:  # fmt: skip
    trigger = _trigger(trigger_id)
    if trigger is None:
        return refused(404, "Not found", f"There is no trigger {trigger_id!r}.")
    chain = _chain(trigger_id)
    deployed = {"triggerId": trigger_id, "deployed": "true", "per_page": "100"}
    answer = api("GET", "/actions/actions", query=deployed)
    bound = {b["action"]["id"] for b in chain}
    deployed_actions = answer.data["actions"] if answer.ok else []
    library = [dict(a, bound=a["id"] in bound) for a in deployed_actions]
    return page("console/flows_chain.html", status, trigger=trigger, chain=chain,
                library=library, error=error, form=form or {},
                done=DONE.get(request.args.get("done", "")))  # fmt: skip


def _after(trigger_id: str, done: str) -> Response:
    return redirect(f"/admin/flows/{trigger_id}?done={done}", code=303)


@bp.get("/flows")
@signed_in
def flows() -> Response:
    answer = api("GET", "/actions/triggers")
    triggers = answer.data["triggers"] if answer.ok else []
    counts = {}
    for trigger in triggers:
        chain = api("GET", f"/actions/triggers/{trigger['id']}/bindings",
                    query={"per_page": "100"})  # fmt: skip
        counts[trigger["id"]] = chain.data["total"] if chain.ok else 0
    return page("console/flows.html", triggers=triggers, counts=counts)


@bp.get("/flows/<trigger_id>")
@signed_in
def flow(trigger_id: str) -> Response:
    return _chain_page(trigger_id)


@bp.post("/flows/<trigger_id>/bindings")
@signed_in
def add_binding(trigger_id: str) -> Response:
    """``POST /actions/triggers/{trigger}/bindings``: one action, at a position."""
    body: dict[str, Any] = {"action": request.form.get("action", "")}
    position = _position()
    if position is not None:
        body["position"] = position
    if request.form.get("allowed_to_fail") == "on":
        body["allowed_to_fail"] = True
    answer = api("POST", f"/actions/triggers/{trigger_id}/bindings", json_body=body)
    if (other := stale_or_refused(answer)) is not None:  # no such trigger
        return other
    if not answer.ok:
        return _chain_page(trigger_id, 400, answer.message, dict(request.form))
    return _after(trigger_id, "added")


def _patch(trigger_id: str, binding_id: str, body: dict[str, Any]) -> Response:
    answer = api("PATCH", f"/actions/triggers/{trigger_id}/bindings/{binding_id}",
                 json_body=body, headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return _chain_page(trigger_id, 400, answer.message)
    return _after(trigger_id, "moved" if "position" in body else "saved")


@bp.post("/flows/<trigger_id>/bindings/<binding_id>/position")
@signed_in
def move_binding(trigger_id: str, binding_id: str) -> Response:
    """``PATCH .../bindings/{id}`` with ``position``: move up, down, or where it was dropped."""
    position = _position()
    return _patch(trigger_id, binding_id, {"position": "" if position is None else position})


@bp.post("/flows/<trigger_id>/bindings/<binding_id>/allowed-to-fail")
@signed_in
def allowed_to_fail(trigger_id: str, binding_id: str) -> Response:
    """``PATCH .../bindings/{id}`` with ``allowed_to_fail`` (an unticked box sends nothing)."""
    return _patch(trigger_id, binding_id,
                  {"allowed_to_fail": request.form.get("allowed_to_fail") == "on"})  # fmt: skip


@bp.post("/flows/<trigger_id>/bindings/<binding_id>/remove")
@signed_in
def remove_binding(trigger_id: str, binding_id: str) -> Response:
    """``DELETE .../bindings/{id}``: the action stays deployed, in the library."""
    answer = api("DELETE", f"/actions/triggers/{trigger_id}/bindings/{binding_id}",
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return _chain_page(trigger_id, 400, answer.message)
    return _after(trigger_id, "removed")
