"""APIs (resource servers) with their scopes, and client grants (which machine clients may call
which API with which scopes), each read and write one ``/api/v2`` operation:
``/resource-servers`` and ``/client-grants`` (``idp.management.resource_servers``,
``idp.management.client_grants``).

Scopes are edited as text, one scope a line, its description after the first space, so that
rows are added and removed without JavaScript. The token settings (``signing_alg``,
``token_lifetime``, ...) are idp's tenant-wide values: the form shows and sends them, and the
API refuses another value with a 400 naming the property, shown on the form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.console.connections import every
from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

ALGS = ("RS256", "PS256", "ES256", "HS256")
DIALECTS = ("rfc9068_profile", "rfc9068_profile_authz", "access_token", "access_token_authz")
# idp's values for an API created before any is listed (the API answers them on every read).
TENANT_DEFAULTS = {"allow_offline_access": True, "token_dialect": "rfc9068_profile",
                   "skip_consent_for_verifiable_first_party_clients": True}  # fmt: skip


# ---------------------------------------------------------------------------------- forms
def scopes_text(scopes: list[dict[str, str]]) -> str:
    """``[{value, description}]`` as the textarea shows it: ``value description`` a line."""
    return "\n".join(f"{s['value']} {s['description']}".rstrip() for s in scopes)


def parse_scopes(text: str) -> list[dict[str, str]]:
    """One scope a line: its value, then (after whitespace) its description."""
    scopes = []
    for line in text.splitlines():
        value, _, description = line.strip().partition(" ")
        if value:
            scopes.append({"value": value, "description": description.strip()})
    return scopes


def _api_body(creating: bool) -> dict[str, Any]:
    """The API's body from the form; what the operator typed is sent as typed (the API
    refuses what it cannot store, naming the property)."""
    form = request.form
    body: dict[str, Any] = {"name": form.get("name", "").strip(),
                            "scopes": parse_scopes(form.get("scopes", ""))}  # fmt: skip
    if creating:
        body["identifier"] = form.get("identifier", "").strip()
    if form.get("signing_alg") in ALGS:
        body["signing_alg"] = form["signing_alg"]
    if form.get("token_dialect") in DIALECTS:
        body["token_dialect"] = form["token_dialect"]
    for name in ("token_lifetime", "token_lifetime_for_web"):
        text = form.get(name, "").strip()
        body[name] = int(text) if text.isdigit() else text or None
        if body[name] is None:
            del body[name]
    for name in ("allow_offline_access", "skip_consent_for_verifiable_first_party_clients"):
        body[name] = form.get(name) == "on"
    return body


def _form(body: dict[str, Any]) -> dict[str, Any]:
    """A body (sent or read) as the form's values."""
    return {**body, "scopes_text": scopes_text(body.get("scopes") or [])}


def _machine_clients() -> list[dict[str, Any]]:
    return every("/clients", app_type="non_interactive")


def _api_page(current: dict[str, Any], form: dict[str, Any], etag: str | None, status: int = 200,
              error: str | None = None, grant_error: str | None = None,
              saved: bool = False) -> Response:  # fmt: skip
    """An API's page: its form, and its client grants with the form granting a new one."""
    grants = every("/client-grants", audience=current["identifier"])
    clients = _machine_clients()
    names = {c["client_id"]: c["name"] for c in clients}
    granted = {g["client_id"] for g in grants}
    return page("console/apis_form.html", status, form=_form(form), current=current, etag=etag,
                error=error, grant_error=grant_error, creating=False, saved=saved,
                grants=grants, names=names,
                grantable=[c for c in clients if c["client_id"] not in granted],
                algs=ALGS, dialects=DIALECTS)  # fmt: skip


def _path(api_id: str) -> str:
    return f"/resource-servers/{quote(api_id, safe='')}"


# ---------------------------------------------------------------------------------- pages
@bp.get("/apis")
@signed_in
def apis() -> Response:
    return page("console/apis.html", apis=every("/resource-servers"))


@bp.route("/apis/new", methods=["GET", "POST"])
@signed_in
def new_api() -> Response:
    error = None
    if request.method == "POST":
        body = _api_body(creating=True)
        answer = api("POST", "/resource-servers", json_body=body)
        if answer.ok:
            return redirect(f"/admin/apis/{answer.data['id']}?saved=1", code=303)
        error, form = answer.message, body
    else:
        listed = api("GET", "/resource-servers", query={"per_page": "1"})
        tenant = (listed.data or [{}])[0] if listed.ok else {}
        shown = ("signing_alg", "token_lifetime", "token_lifetime_for_web", *TENANT_DEFAULTS)
        form = {**TENANT_DEFAULTS, **{k: v for k, v in tenant.items() if k in shown}}
    return page("console/apis_form.html", 400 if error else 200, form=_form(form), error=error,
                creating=True, algs=ALGS, dialects=DIALECTS)  # fmt: skip


@bp.route("/apis/<api_id>", methods=["GET", "POST"])
@signed_in
def api_page(api_id: str) -> Response:
    if request.method == "POST":
        body = _api_body(creating=False)
        answer = api("PATCH", _path(api_id), json_body=body, headers=if_match())
        if (other := stale_or_refused(answer)) is not None:
            return other
        if answer.ok:
            return redirect(f"/admin/apis/{api_id}?saved=1", code=303)
        current = api("GET", _path(api_id))
        if (other := stale_or_refused(current)) is not None:
            return other
        return _api_page(current.data, {**current.data, **body}, request.form.get("etag"), 400,
                         error=answer.message)  # fmt: skip
    current = api("GET", _path(api_id))
    if (other := stale_or_refused(current)) is not None:
        return other
    return _api_page(current.data, current.data, current.etag,
                     saved=request.args.get("saved") == "1")  # fmt: skip


@bp.post("/apis/<api_id>/delete")
@signed_in
def delete_api(api_id: str) -> Response:
    answer = api("DELETE", _path(api_id), headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect("/admin/apis", code=303)


# ---------------------------------------------------------------------------- client grants
@bp.post("/apis/<api_id>/grants")
@signed_in
def new_grant(api_id: str) -> Response:
    current = api("GET", _path(api_id))
    if (other := stale_or_refused(current)) is not None:
        return other
    body = {"client_id": request.form.get("client_id", ""), "audience": current.data["identifier"],
            "scope": request.form.getlist("scope")}  # fmt: skip
    answer = api("POST", "/client-grants", json_body=body)
    if answer.ok:
        return redirect(f"/admin/apis/{api_id}?saved=1#grants", code=303)
    return _api_page(current.data, current.data, current.etag, 400, grant_error=answer.message)


@bp.route("/apis/<api_id>/grants/<grant_id>", methods=["GET", "POST"])
@signed_in
def grant(api_id: str, grant_id: str) -> Response:
    current = api("GET", _path(api_id))
    if (other := stale_or_refused(current)) is not None:
        return other
    error, etag = None, request.form.get("etag")
    if request.method == "POST":
        body = {"scope": request.form.getlist("scope")}
        answer = api("PATCH", f"/client-grants/{grant_id}", json_body=body, headers=if_match())
        if (other := stale_or_refused(answer)) is not None:
            return other
        if answer.ok:
            return redirect(f"/admin/apis/{api_id}/grants/{grant_id}?saved=1", code=303)
        error = answer.message
    held = api("GET", f"/client-grants/{grant_id}")
    if (other := stale_or_refused(held)) is not None:
        return other
    if held.data["audience"] != current.data["identifier"]:
        return refused(404, "Not found", f"no grant {grant_id!r} for this API")
    client = api("GET", f"/clients/{held.data['client_id']}")
    chosen = request.form.getlist("scope") if error else held.data["scope"]
    return page("console/apis_grant.html", 400 if error else 200, api=current.data,
                grant=held.data, chosen=chosen, etag=etag if error else held.etag, error=error,
                client_name=client.data["name"] if client.ok else held.data["client_id"],
                saved=request.args.get("saved") == "1")  # fmt: skip


@bp.post("/apis/<api_id>/grants/<grant_id>/delete")
@signed_in
def delete_grant(api_id: str, grant_id: str) -> Response:
    answer = api("DELETE", f"/client-grants/{grant_id}", headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect(f"/admin/apis/{api_id}#grants", code=303)
