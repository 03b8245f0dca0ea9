"""Users: search (the management API's ``q``, ``idp.identity.search``), creating a database
user, and a user's page: profile and standard claims, app/user metadata as JSON, blocking,
identities (unlink), MFA enrolments (reset), sessions (revoke), grants (revoke), deletion.

Every read and write is one ``/api/v2`` operation (``idp.management.users``, ``identities``,
``user_enrollments``, ``user_sessions``); edits of the user carry the ETag the page was rendered
from as ``If-Match`` (a 412 is the "changed meanwhile" page).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.console.internal import Answer
from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

# The standard claims the API takes as text (OIDC Core §5.1; ``address`` is an object and
# ``phone_number_verified`` a boolean, shown but not edited here)
CLAIMS = ("name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
          "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale",
          "phone_number")  # fmt: skip
METADATA = ("app_metadata", "user_metadata")
SORTS = {"created_at:1": "Oldest first", "created_at:-1": "Newest first", "email:1": "Email A-Z",
         "email:-1": "Email Z-A", "updated_at:-1": "Recently updated",
         "logins_count:-1": "Most logins"}  # fmt: skip
PER_PAGE = (20, 50, 100)
# What a redirect after a change says: a fixed set, so no text is reflected from a URL
DONE = {"saved": "Saved.", "blocked": "The user is blocked: no login, no token refresh.",
        "unblocked": "The user is unblocked.", "unlinked": "The identity was unlinked.",
        "mfa": "The MFA enrolment was removed.", "session": "The session was revoked.",
        "sessions": "Every session of the user was revoked.", "grant": "The grant was revoked.",
        "created": "The user was created."}  # fmt: skip


def _int_arg(name: str, default: int, choices: tuple[int, ...] | None = None) -> int:
    raw = request.args.get(name, "")
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else default
    return value if choices is None or value in choices else default


def _user_path(user_id: str) -> str:
    return "/users/" + quote(user_id, safe="")


def _back(user_id: str, done: str) -> Response:
    return redirect(f"/admin/users/{quote(user_id, safe='')}?done={done}", code=303)


def _after(answer: Answer, title: str, user_id: str, done: str) -> Response:
    """Back to the user's page saying what was done, or the page for a refused action (a
    stale ETag, a missing item, the API's reason)."""
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, title, answer.message)
    return _back(user_id, done)


# ------------------------------------------------------------------------------- search
@bp.get("/users")
@signed_in
def users() -> Response:
    """A page of ``GET /users?q=...&include_totals=true``; a refused query (400) is shown
    above the results with the query kept."""
    q = request.args.get("q", "").strip()
    sort = request.args.get("sort", "created_at:1")
    sort = sort if sort in SORTS else "created_at:1"
    per_page = _int_arg("per_page", 20, PER_PAGE)
    page_no = _int_arg("page", 0)
    query = {"include_totals": "true", "page": str(page_no), "per_page": str(per_page),
             "sort": sort, "fields": "user_id,email,name,email_verified,blocked,logins_count,"
             "created_at,identities"}  # fmt: skip
    if q:
        query["q"] = q
    answer = api("GET", "/users", query=query)
    found: dict[str, Any] = answer.data if answer.ok else {"users": [], "total": 0, "start": 0}
    total, shown = int(found["total"]), found["users"]

    def link(to_page: int) -> str:
        args = {"q": q, "sort": sort, "per_page": per_page, "page": to_page}
        return "/admin/users?" + urlencode({k: v for k, v in args.items() if v != ""})

    start = int(found.get("start", 0))
    older = link(page_no + 1) if start + len(shown) < min(total, 1000) else None
    return page("console/users.html", 200 if answer.ok else 400, users=shown, total=total,
                start=start, q=q, sort=sort, sorts=SORTS, per_page=per_page,
                per_pages=PER_PAGE, error=None if answer.ok else answer.message,
                next_link=older, prev_link=link(page_no - 1) if page_no > 0 else None)  # fmt: skip


@bp.route("/users/new", methods=["GET", "POST"])
@signed_in
def new_user() -> Response:
    """``POST /users`` in the database connection; the password is never rendered back."""
    form: dict[str, Any] = {"email": "", "email_verified": False}
    error = None
    if request.method == "POST":
        form = {"email": request.form.get("email", "").strip(),
                "email_verified": request.form.get("email_verified") == "on"}  # fmt: skip
        if name := request.form.get("name", "").strip():
            form["name"] = name
        password = request.form.get("password", "")
        body = {**form, "connection": "database", "password": password}
        answer = api("POST", "/users", json_body=body)
        if answer.ok:
            return _back(answer.data["user_id"], "created")
        error = answer.message
    return page("console/users_new.html", 400 if error else 200, form=form, error=error)


# ---------------------------------------------------------------------------- one user
def _user_page(user_id: str, status: int = 200, **overrides: Any) -> Response:
    """The user's page: the user (its ETag on every edit form) and, each through its own
    operation, the identities, MFA enrolments, sessions and grants."""
    answer = api("GET", _user_path(user_id))
    if (other := stale_or_refused(answer)) is not None:
        return other
    user = answer.data
    enrollments = api("GET", _user_path(user_id) + "/enrollments")
    sessions = api("GET", _user_path(user_id) + "/sessions")
    grants = api("GET", "/grants", query={"user_id": user_id, "per_page": "100"})
    metadata = {k: json.dumps(user.get(k) or {}, indent=2, sort_keys=True) for k in METADATA}
    context: dict[str, Any] = {
        "user": user, "etag": answer.etag, "claims": CLAIMS, "form": user,
        "metadata": metadata, "error": None, "metadata_error": None,
        "enrollments": enrollments.data if enrollments.ok else [],
        "sessions": sessions.data["sessions"] if sessions.ok else [],
        "grants": grants.data if grants.ok else [],
        "done": DONE.get(request.args.get("done", "")),
    }  # fmt: skip
    context.update(overrides)
    return page("console/users_detail.html", status, **context)


@bp.get("/users/<user_id>")
@signed_in
def user(user_id: str) -> Response:
    return _user_page(user_id)


def _profile_changes(current: dict[str, Any]) -> dict[str, Any]:
    """What the profile form changes: a claim emptied is removed (``null``), one left empty
    is not sent; ``email_verified`` only when it changes (a new email is unverified unless
    the box says otherwise)."""
    body: dict[str, Any] = {}
    email = request.form.get("email", "").strip()
    if email != current.get("email"):
        body["email"] = email
    verified = request.form.get("email_verified") == "on"
    if verified != current.get("email_verified") or "email" in body:
        body["email_verified"] = verified
    for claim in CLAIMS:
        value = request.form.get(claim, "").strip()
        if value != (current.get(claim) or ""):
            body[claim] = value or None
    return body


@bp.post("/users/<user_id>/profile")
@signed_in
def edit_profile(user_id: str) -> Response:
    current = api("GET", _user_path(user_id))
    if (other := stale_or_refused(current)) is not None:
        return other
    body = _profile_changes(current.data)
    if not body:
        return _back(user_id, "saved")
    answer = api("PATCH", _user_path(user_id), json_body=body, headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if answer.ok:
        return _back(user_id, "saved")
    kept = {**current.data, **{k: request.form.get(k, "") for k in ("email", *CLAIMS)},
            "email_verified": request.form.get("email_verified") == "on"}  # fmt: skip
    return _user_page(user_id, 400, form=kept, error=answer.message,
                      etag=request.form.get("etag", ""))  # fmt: skip


def _metadata_changes(current: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The textareas as a PATCH: the API merges one level deep, so a top-level key the admin
    removed is sent as ``null``. Text that is not JSON cannot be sent: refused here; what is
    JSON but not an object goes to the API, whose 400 is shown."""
    body: dict[str, Any] = {}
    for name in METADATA:
        text = request.form.get(name, "").strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            return {}, f"{name} is not valid JSON: {exc.msg} ({where})."
        if isinstance(value, dict):
            gone = {k: None for k in current.get(name) or {} if k not in value}
            value = {**gone, **value}
            if value == (current.get(name) or {}):
                continue
        body[name] = value
    return body, None


@bp.post("/users/<user_id>/metadata")
@signed_in
def edit_metadata(user_id: str) -> Response:
    current = api("GET", _user_path(user_id))
    if (other := stale_or_refused(current)) is not None:
        return other
    body, error = _metadata_changes(current.data)
    if error is None and not body:
        return _back(user_id, "saved")
    if error is None:
        answer = api("PATCH", _user_path(user_id), json_body=body, headers=if_match())
        if (other := stale_or_refused(answer)) is not None:
            return other
        if answer.ok:
            return _back(user_id, "saved")
        error = answer.message
    kept = {name: request.form.get(name, "") for name in METADATA}
    return _user_page(user_id, 400, metadata=kept, metadata_error=error,
                      etag=request.form.get("etag", ""))  # fmt: skip


@bp.post("/users/<user_id>/block")
@signed_in
def block(user_id: str) -> Response:
    blocked = request.form.get("blocked") == "true"
    answer = api("PATCH", _user_path(user_id), json_body={"blocked": blocked}, headers=if_match())
    return _after(answer, "Not changed", user_id, "blocked" if blocked else "unblocked")


@bp.post("/users/<user_id>/delete")
@signed_in
def delete_user(user_id: str) -> Response:
    answer = api("DELETE", _user_path(user_id), headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect("/admin/users", code=303)


@bp.post("/users/<user_id>/identities/unlink")
@signed_in
def unlink(user_id: str) -> Response:
    """``DELETE /users/{id}/identities/{connection}/{upstream id}`` (the connection's name
    is never ambiguous, a provider may be)."""
    connection = quote(request.form.get("connection", ""), safe="")
    upstream = quote(request.form.get("upstream_user_id", ""), safe="")
    answer = api("DELETE", f"{_user_path(user_id)}/identities/{connection}/{upstream}")
    return _after(answer, "Not unlinked", user_id, "unlinked")


@bp.post("/users/<user_id>/enrollments/delete")
@signed_in
def reset_mfa(user_id: str) -> Response:
    enrollment = quote(request.form.get("enrollment_id", ""), safe="")
    answer = api("DELETE", f"/guardian/enrollments/{enrollment}")
    return _after(answer, "Not removed", user_id, "mfa")


@bp.post("/users/<user_id>/sessions/delete")
@signed_in
def revoke_session(user_id: str) -> Response:
    """One session (``session_id``) or, without one, all of the user's."""
    sid = request.form.get("session_id", "")
    if sid:
        answer = api("DELETE", "/sessions/" + quote(sid, safe=""))
    else:
        answer = api("DELETE", _user_path(user_id) + "/sessions")
    return _after(answer, "Not revoked", user_id, "session" if sid else "sessions")


@bp.post("/users/<user_id>/grants/delete")
@signed_in
def revoke_grant(user_id: str) -> Response:
    answer = api("DELETE", "/grants/" + quote(request.form.get("grant_id", ""), safe=""))
    return _after(answer, "Not revoked", user_id, "grant")
