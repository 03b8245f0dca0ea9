"""Connections: database, social and enterprise OIDC/OAuth2 and SAML connections with their
options, the applications each is enabled for, and for SAML what to hand to the customer's IdP
(its SP metadata URL and signing certificate) and the SP key rotation. Each read and write is
one ``/api/v2/connections`` operation (``idp.management.connections``).

A strategy's option fields are generated from the table the API validates options against
(``idp.connections.strategies.OPTIONS``, by the strategy's protocol), so the form offers what
the API accepts for that strategy; the options idp generates (the SAML SP's key pair) are not
offered. Secrets are write-only: the API never answers them, an empty field keeps the stored
one. An edit sends only the options that changed (the API merges options, ``null`` removing
one), the ETag it was rendered from as ``If-Match``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.connections import strategies
from idp.connections.samlp import GENERATED
from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

LABELS = {"database": "Database (idp's own users)", "oidc": "OpenID Connect (any provider)",
          "oauth2": "OAuth 2.0 (a provider without OpenID Connect)",
          "samlp": "SAML identity provider (enterprise)", "google": "Google",
          "microsoft": "Microsoft", "apple": "Apple", "github": "GitHub", "gitlab": "GitLab",
          "facebook": "Facebook", "linkedin": "LinkedIn"}  # fmt: skip


class FormError(ValueError):
    """A field the console cannot turn into the API's JSON (the API never saw it)."""


@dataclass(frozen=True)
class Field:
    """One option as a form field: ``kind`` is the API's (str, url, bool, list, map, secret,
    xml); ``text`` what the field shows (never a secret)."""

    name: str
    kind: str
    help: str
    required: bool
    text: str


# ---------------------------------------------------------------------------------- options
def option_specs(strategy: str) -> dict[str, strategies.Option]:
    """The options the API accepts for ``strategy``, but those idp generates itself."""
    kind = strategies.protocol(strategy)
    return {k: o for k, o in strategies.OPTIONS[kind].items() if k not in GENERATED}


def as_text(kind: str, value: Any) -> str:
    """An option's value as its field shows it."""
    if value is None or kind == "secret":
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "list":
        return "\n".join(str(v) for v in value)
    if kind == "map":
        return "\n".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def from_text(name: str, kind: str, text: str) -> Any:
    """A field's text as the option's JSON value; ``None``: not set (the default)."""
    text = text.strip()
    if not text:
        return None
    if kind == "bool":
        return {"true": True, "false": False}.get(text)
    if kind == "list":
        return text.split()
    if kind == "map":
        pairs = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if not line.strip():
                continue
            if not sep or not key.strip():
                raise FormError(f"option {name}: each line is name=value, not {line.strip()!r}")
            pairs[key.strip()] = value.strip()
        return pairs
    return text


def fields(strategy: str, values: dict[str, Any], typed: bool = False) -> list[Field]:
    """The strategy's option fields showing ``values`` (or, ``typed``, what the form sent:
    a refused form keeps what the operator typed, but never a secret)."""
    return [
        Field(name, spec.kind, spec.help, spec.required,
              "" if spec.kind == "secret" else request.form.get(f"option.{name}", "") if typed
              else as_text(spec.kind, values.get(name)))
        for name, spec in option_specs(strategy).items()
    ]  # fmt: skip


def typed_options(strategy: str) -> dict[str, Any]:
    """Every option field of the form, typed (``None``: empty)."""
    return {name: from_text(name, spec.kind, request.form.get(f"option.{name}", ""))
            for name, spec in option_specs(strategy).items()}  # fmt: skip


def changed_options(strategy: str, stored: dict[str, Any]) -> dict[str, Any]:
    """What an edit sends: each option whose value differs from the stored one (``None``
    removes it), and each secret typed (an empty secret keeps the stored one)."""
    sent = {}
    for name, value in typed_options(strategy).items():
        if option_specs(strategy)[name].kind == "secret":
            if value is not None:
                sent[name] = value
        elif value != stored.get(name):
            sent[name] = value
    return sent


def _position() -> int | str | None:
    text = request.form.get("position", "").strip()
    return int(text) if text.isdigit() else text or None


def every(path: str, **query: str) -> list[dict[str, Any]]:
    """Every item of a list route, page by page (100 a page, the API's most): a form that
    writes a whole list (``enabled_clients``) must show all of it, or it would drop the rest."""
    items: list[dict[str, Any]] = []
    for number in range(10_000):
        answer = api("GET", path, query={**query, "page": str(number), "per_page": "100"})
        if not answer.ok or not isinstance(answer.data, list):
            break
        items += answer.data
        if len(answer.data) < 100:
            break
    return items


def _clients() -> list[dict[str, Any]]:
    return every("/clients")


def _form_page(strategy: str, form: dict[str, Any], *, creating: bool, status: int = 200,
               error: str | None = None, current: dict[str, Any] | None = None,
               etag: str | None = None, notice: str | None = None) -> Response:  # fmt: skip
    """The create or edit form; after a refusal (``error``) it shows what was typed."""
    return page("console/connections_form.html", status, strategy=strategy, form=form,
                label=LABELS.get(strategy, strategy), creating=creating, error=error,
                fields=fields(strategy, form.get("options") or {}, typed=error is not None),
                clients=_clients(),
                current=current, etag=etag, notice=notice,
                social=strategies.is_social(strategy))  # fmt: skip


# ---------------------------------------------------------------------------------- pages
@bp.get("/connections")
@signed_in
def connections() -> Response:
    return page("console/connections.html", connections=every("/connections"), labels=LABELS)


@bp.route("/connections/new", methods=["GET", "POST"])
@signed_in
def new_connection() -> Response:
    strategy = request.values.get("strategy", "")
    if strategy not in strategies.STRATEGIES:
        return page("console/connections_new.html", labels=LABELS)
    if request.method == "GET":
        defaults = strategies.PRESETS.get(strategy, ("", {}))[1]
        return _form_page(strategy, {"options": defaults, "enabled_clients": []}, creating=True)
    form: dict[str, Any] = {
        "name": request.form.get("name", "").strip(),
        "display_name": request.form.get("display_name", "").strip() or None,
        "strategy": strategy, "enabled_clients": request.form.getlist("enabled_clients"),
    }  # fmt: skip
    if (position := _position()) is not None:
        form["position"] = position
    try:
        options = {k: v for k, v in typed_options(strategy).items() if v is not None}
    except FormError as exc:
        return _form_page(strategy, form, creating=True, status=400, error=str(exc))
    answer = api("POST", "/connections", json_body={**form, "options": options})
    if answer.ok:
        return redirect(f"/admin/connections/{answer.data['id']}?saved=1", code=303)
    return _form_page(strategy, form, creating=True, status=400, error=answer.message)


@bp.route("/connections/<connection_id>", methods=["GET", "POST"])
@signed_in
def connection(connection_id: str) -> Response:
    current = api("GET", f"/connections/{connection_id}")
    if (other := stale_or_refused(current)) is not None:
        return other
    strategy = current.data["strategy"]
    if request.method == "GET":
        notice = {"1": "Saved.", "rotated": "A new SP key pair: hand the new certificate "
                  "to the identity provider."}.get(request.args.get("saved", ""))  # fmt: skip
        return _form_page(strategy, current.data, creating=False, current=current.data,
                          etag=current.etag, notice=notice)  # fmt: skip
    body: dict[str, Any] = {"enabled_clients": request.form.getlist("enabled_clients")}
    display_name = request.form.get("display_name", "").strip() or None
    if display_name != current.data["display_name"]:
        body["display_name"] = display_name
    if (position := _position()) is not None and position != current.data["position"]:
        body["position"] = position
    shown = {**current.data, **body, "display_name": display_name}
    try:
        options = changed_options(strategy, current.data["options"])
    except FormError as exc:
        return _form_page(strategy, shown, creating=False, status=400, error=str(exc),
                          current=current.data, etag=request.form.get("etag"))  # fmt: skip
    if options:
        body["options"] = options
    answer = api("PATCH", f"/connections/{connection_id}", json_body=body, headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if answer.ok:
        return redirect(f"/admin/connections/{connection_id}?saved=1", code=303)
    return _form_page(strategy, shown, creating=False, status=400, error=answer.message,
                      current=current.data, etag=request.form.get("etag"))  # fmt: skip


@bp.post("/connections/<connection_id>/rotate-keys")
@signed_in
def rotate_connection_keys(connection_id: str) -> Response:
    answer = api("POST", f"/connections/{connection_id}/keys/rotate")
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not rotated", answer.message)
    return redirect(f"/admin/connections/{connection_id}?saved=rotated", code=303)


@bp.post("/connections/<connection_id>/delete")
@signed_in
def delete_connection(connection_id: str) -> Response:
    force = {"force": "true"} if request.form.get("force") == "on" else None
    answer = api("DELETE", f"/connections/{connection_id}", query=force, headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect("/admin/connections", code=303)
