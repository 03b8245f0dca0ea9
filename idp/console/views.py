"""The console's sign-in and out, its overview, and applications (list, create with the
secret shown once, edit, rotate the secret, delete).

An application's page also sets its grant types (those its type allows), its MFA policy (the
clients API's ``mfa_policy``, an idp extension) and the connections its users sign in with:
those are written through the connections API's ``enabled_clients`` (Auth0's shape), one
``PATCH /connections/{id}`` with ``If-Match`` per connection that gains or loses the app, after
the application itself is saved."""

from __future__ import annotations

from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.console import auth
from idp.console.connections import every
from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

APP_TYPES = {"regular_web": "Regular web application", "spa": "Single-page application",
             "native": "Native application", "non_interactive": "Machine to machine"}  # fmt: skip
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - RFC 8693
GRANT_TYPES = {"regular_web": ("authorization_code", "refresh_token", TOKEN_EXCHANGE),
               "spa": ("authorization_code", "refresh_token"),
               "native": ("authorization_code", "refresh_token"),
               "non_interactive": ("client_credentials", TOKEN_EXCHANGE)}  # fmt: skip
MFA_POLICIES = {
    "": "The tenant's policy (MFA_POLICY)",
    "never": "Never",
    "always": "Always, at every login",
    "adaptive": "Adaptive: users who enrolled a factor, unless their browser is remembered",
}


# ----------------------------------------------------------------------------- sign-in
@bp.get("/login")
def login() -> Response:
    return auth.begin_login()


@bp.get("/callback")
def callback() -> Response:
    try:
        admin, next_path = auth.finish_login()
    except auth.Refused as exc:
        resp = refused(exc.status, exc.title, exc.text)
        auth.forget_login(resp)
        return resp
    resp = redirect(next_path, code=303)
    auth.start_session(resp, admin)
    return resp


@bp.post("/logout")
def logout() -> Response:
    resp = refused(200, "Signed out", "You are signed out of the console.")
    auth.end(resp)
    return resp


@bp.get("")
def root() -> Response:
    return redirect("/admin/", code=308)


@bp.get("/")
@signed_in
def home() -> Response:
    return page("console/home.html")


# ------------------------------------------------------------------------- applications
def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def _client_body(creating: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": request.form.get("name", "").strip(),
        "callbacks": _lines("callbacks"),
        "allowed_logout_urls": _lines("allowed_logout_urls"),
        "is_first_party": request.form.get("is_first_party") == "on",
    }
    if creating:
        body["app_type"] = request.form.get("app_type", "regular_web")
    method = request.form.get("token_endpoint_auth_method")
    if method in AUTH_METHODS:
        body["token_endpoint_auth_method"] = method
    if "grant_types_shown" in request.form:  # the fieldset was on the form: the whole list
        body["grant_types"] = request.form.getlist("grant_types")
    if "mfa_policy" in request.form:
        body["mfa_policy"] = request.form["mfa_policy"] or None
    return body


def _connections() -> list[dict[str, Any]]:
    return every("/connections")


def _enable_connections(client_id: str) -> str | None:
    """The connections checked on the form enabled for the app, the others not: a PATCH of
    ``enabled_clients`` (with the connection's ETag) for each that changes. The reason of the
    first refusal, if any."""
    wanted = set(request.form.getlist("connections"))
    for connection in _connections():
        has = client_id in connection["enabled_clients"]
        if has == (connection["id"] in wanted):
            continue
        current = api("GET", f"/connections/{connection['id']}")
        if not current.ok:
            return f"{connection['name']}: {current.message}"
        others = [c for c in current.data["enabled_clients"] if c != client_id]
        answer = api("PATCH", f"/connections/{connection['id']}",
                     json_body={"enabled_clients": others if has else [*others, client_id]},
                     headers={"If-Match": current.etag or ""})  # fmt: skip
        if not answer.ok:
            return f"{connection['name']}: {answer.message}"
    return None


def _form_page(form: dict[str, Any], status: int = 200, **context: Any) -> Response:
    """The application form (create, or edit with its grant types and connections)."""
    creating = context.setdefault("creating", False)
    context.setdefault("checked", None)  # the connections checked on a refused form
    app_type = form.get("app_type", "regular_web")
    machine = app_type == "non_interactive" and not creating
    return page("console/application_form.html", status, form=form, app_types=APP_TYPES,
                methods=AUTH_METHODS, grant_types=GRANT_TYPES.get(app_type, ()),
                mfa_policies=MFA_POLICIES,
                connections=[] if creating or app_type == "non_interactive" else _connections(),
                client_grants=_client_grants(form["client_id"]) if machine else [],
                **context)  # fmt: skip


def _client_grants(client_id: str) -> list[dict[str, Any]]:
    """A machine client's grants, each with its API (edited on the API's page)."""
    grants = every("/client-grants", client_id=client_id)
    apis = {a["identifier"]: a for a in every("/resource-servers")} if grants else {}
    return [{**g, "api": apis.get(g["audience"])} for g in grants]


@bp.get("/applications")
@signed_in
def applications() -> Response:
    answer = api("GET", "/clients", query={"per_page": "100"})
    return page("console/applications.html", clients=answer.data if answer.ok else [],
                app_types=APP_TYPES)  # fmt: skip


@bp.route("/applications/new", methods=["GET", "POST"])
@signed_in
def new_application() -> Response:
    form: dict[str, Any] = {"app_type": "regular_web", "is_first_party": True}
    error = None
    if request.method == "POST":
        form = _client_body(creating=True)
        answer = api("POST", "/clients", json_body=form)
        if answer.ok:
            return page("console/secret.html", client=answer.data, app_types=APP_TYPES)
        error = answer.message
    return _form_page(form, 400 if error else 200, error=error, creating=True)


@bp.route("/applications/<client_id>", methods=["GET", "POST"])
@signed_in
def application(client_id: str) -> Response:
    if request.method == "POST":
        form = _client_body(creating=False)
        answer = api("PATCH", f"/clients/{client_id}", json_body=form,
                     headers=if_match())  # fmt: skip
        if (other := stale_or_refused(answer)) is not None:
            return other
        if answer.ok:
            if "connections_shown" in request.form and (why := _enable_connections(client_id)):
                text = f"The application was saved, but not its connections ({why})."
                return refused(409, "Partly saved", text + " Open it again to see what holds.")
            return redirect(f"/admin/applications/{client_id}?saved=1", code=303)
        current = api("GET", f"/clients/{client_id}")
        checked = request.form.getlist("connections")
        return _form_page({**(current.data or {}), **form}, 400, error=answer.message,
                          etag=request.form.get("etag", ""), checked=checked)  # fmt: skip
    answer = api("GET", f"/clients/{client_id}")
    if (other := stale_or_refused(answer)) is not None:
        return other
    return _form_page(answer.data, etag=answer.etag, error=None,
                      saved=request.args.get("saved") == "1")  # fmt: skip


@bp.post("/applications/<client_id>/rotate-secret")
@signed_in
def rotate_secret(client_id: str) -> Response:
    answer = api("POST", f"/clients/{client_id}/rotate-secret")
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not rotated", answer.message)
    return page("console/secret.html", client=answer.data, app_types=APP_TYPES, rotated=True)


@bp.post("/applications/<client_id>/delete")
@signed_in
def delete_application(client_id: str) -> Response:
    answer = api("DELETE", f"/clients/{client_id}",
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect("/admin/applications", code=303)
