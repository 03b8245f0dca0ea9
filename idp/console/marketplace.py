"""The marketplace: the reviewed plugins of ``plugins/actions/`` and, for each, its settings and
secrets as a form generated from its manifest's schema, installed and bound in one go.

Reads and the install are ``/api/v2/marketplace/plugins`` operations (``GET``, and ``POST
.../{slug}/install`` with ``bind``): the API checks the values against the manifest, so a
refusal (a required setting missing, a value not among the choices) is its 400, shown on the
form with the values kept. Secrets are password inputs, never filled in again: an empty one is
not sent, so reinstalling keeps the secret stored.

How a setting's type becomes an input: ``string`` a text input (a ``select`` when it has
choices: an enum), ``integer`` a number input, ``bool`` a checkbox, ``list`` a group of
checkboxes when it has choices, else a text area with one value a line.
"""

from __future__ import annotations

import re
from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.console.pages import api, bp, page, signed_in, stale_or_refused

_PROPERTY = re.compile(r"on property (config|secrets)\.(\w+)")


def _kind(setting: dict[str, Any]) -> str:
    kind, choices = setting["type"], setting.get("choices") or []
    if kind in ("bool", "boolean"):
        return "checkbox"
    if kind in ("list", "array"):
        return "checkboxes" if choices else "lines"
    if kind in ("integer", "int"):
        return "number"
    return "select" if choices else "text"


def _fields(plugin: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """The form's inputs, in the manifest's order, each with the value to show."""
    return [
        {**s, "kind": _kind(s), "value": values.get(s["name"], s.get("default"))}
        for s in plugin["configuration"]
    ]


def _from_form(plugin: dict[str, Any]) -> dict[str, Any]:
    """The ``config`` body from the form, each value in its setting's type."""
    config: dict[str, Any] = {}
    for setting in plugin["configuration"]:
        key, kind = "config." + setting["name"], _kind(setting)
        if kind == "checkbox":
            config[setting["name"]] = request.form.get(key) == "on"
        elif kind == "checkboxes":
            config[setting["name"]] = request.form.getlist(key)
        elif kind == "lines":
            text = request.form.get(key, "")
            config[setting["name"]] = [v.strip() for v in text.splitlines() if v.strip()]
        elif kind == "number":
            text = request.form.get(key, "").strip()
            config[setting["name"]] = int(text) if re.fullmatch(r"-?\d{1,18}", text) else text
        else:
            config[setting["name"]] = request.form.get(key, "")
    return config


def _current(plugin: dict[str, Any], name: str) -> dict[str, Any]:
    """The configuration of the action already installed under ``name`` (an upgrade shows it)."""
    mine = next((a for a in plugin["installed"] if a["name"] == name), None)
    if mine is None:
        return {}
    answer = api("GET", f"/actions/actions/{mine['id']}")
    return dict(answer.data.get("configuration") or {}) if answer.ok else {}


@bp.get("/marketplace")
@signed_in
def marketplace() -> Response:
    answer = api("GET", "/marketplace/plugins")
    return page("console/marketplace.html", plugins=answer.data["plugins"] if answer.ok else [],
                error=None if answer.ok else answer.message)  # fmt: skip


@bp.route("/marketplace/<slug>", methods=["GET", "POST"])
@signed_in
def plugin(slug: str) -> Response:
    answer = api("GET", f"/marketplace/plugins/{slug}")
    if (other := stale_or_refused(answer)) is not None:
        return other
    found = answer.data
    if request.method == "GET":
        return page("console/marketplace_plugin.html", plugin=found, error=None, invalid=None,
                    fields=_fields(found, _current(found, slug)), name=slug, bind=True,
                    secrets_set=set())  # fmt: skip
    name = request.form.get("name", "").strip() or slug
    config = _from_form(found)
    secrets = {s["name"]: request.form.get("secret." + s["name"], "") for s in found["secrets"]}
    given = {k: v for k, v in secrets.items() if v}  # an empty one keeps the stored value
    bind = request.form.get("bind") == "on"
    body = {"name": name, "config": config, "bind": bind, "secrets": given}
    done = api("POST", f"/marketplace/plugins/{slug}/install", json_body=body)
    if done.ok:
        state = "installed" if done.data.get("binding") else "deployed"
        return redirect(f"/admin/flows/{found['trigger_id']}?done={state}", code=303)
    invalid = _PROPERTY.search(done.message)
    return page("console/marketplace_plugin.html", 400, plugin=found, error=done.message,
                invalid=f"{invalid.group(1)}.{invalid.group(2)}" if invalid else None,
                fields=_fields(found, config), name=name, bind=bind,
                secrets_set=set(given))  # fmt: skip
