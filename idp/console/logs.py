"""The tenant log (filters, pages, an event's detail, a live tail) and log streams, each read
and write one ``/api/v2`` operation (``idp.management.logs``, ``idp.management.log_streams``).

- ``/admin/logs``: the newest events first (``page``/``per_page``), "older" by page; with
  ``from`` (a log id) the events after it, Auth0's checkpoint paging (``from``/``take``), whose
  "newer" link is the last id shown. Filters: ``type``, ``user_id``, ``client_id``,
  ``date_from`` (the API's).
- ``/admin/logs/live``: the newest events, then new ones as they arrive: with JavaScript
  ``static/console/logs.js`` asks ``/admin/logs/tail?after=ID`` every few seconds for the rows
  after the newest shown (an HTML fragment, ``X-Last-Log-Id`` the newest id) and prepends them;
  without, a "newer events" link does the same by hand. The polls do not count as activity.
- ``/admin/logs/streams``: HTTP log streams: list with status and checkpoint, create (the
  ``Authorization`` value write-only, the signing secret shown once), pause/resume, delete.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from flask import g, redirect, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.console import auth
from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused

FILTERS = ("type", "user_id", "client_id", "date_from")
PER_PAGE = 50
TAIL_TAKE = 100  # the API's most per read; a longer burst arrives over the next polls
CONTENT_TYPES = ("application/x-ndjson", "application/json")


def _filters() -> dict[str, str]:
    """The filters asked for, as the API's query parameters (empty ones left out)."""
    return {k: v for k in FILTERS if (v := request.args.get(k, "").strip())}


def _log_id(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 11 else None


def _link(path: str, **args: Any) -> str:
    query = {**_filters(), **{k: str(v) for k, v in args.items()}}
    return path + ("?" + urlencode(query) if query else "")


# ----------------------------------------------------------------------------- the log
@bp.get("/logs")
@signed_in
def logs() -> Response:
    """A page newest first, or (``from``) the events after a checkpoint, shown newest first."""
    after, page_no = _log_id("from"), _log_id("page") or 0
    if after is not None:
        answer = api("GET", "/logs", query={**_filters(), "from": str(after),
                                            "take": str(PER_PAGE)})  # fmt: skip
        rows = list(reversed(answer.data)) if answer.ok else []
    else:
        answer = api("GET", "/logs", query={**_filters(), "page": str(page_no),
                                            "per_page": str(PER_PAGE)})  # fmt: skip
        rows = answer.data if answer.ok else []
    newest = int(rows[0]["log_id"]) if rows else after
    older = None
    if after is None and len(rows) == PER_PAGE:
        older = _link("/admin/logs", page=page_no + 1)
    return page("console/logs.html", 200 if answer.ok else 400, rows=rows, filters=_filters(),
                types=events.ALL, error=None if answer.ok else answer.message,
                after=after, older_link=older,
                newer_link=_link("/admin/logs", **{"from": newest or 0}),
                live_link=_link("/admin/logs/live"))  # fmt: skip


@bp.get("/logs/live")
@signed_in
def live() -> Response:
    answer = api("GET", "/logs", query={**_filters(), "per_page": "20"})
    rows = answer.data if answer.ok else []
    newest = int(rows[0]["log_id"]) if rows else 0
    return page("console/logs_live.html", 200 if answer.ok else 400, rows=rows,
                filters=_filters(), types=events.ALL, newest=newest,
                error=None if answer.ok else answer.message,
                tail_link=_link("/admin/logs/tail"),
                newer_link=_link("/admin/logs", **{"from": newest}))  # fmt: skip


def watching(view: Callable[[], Response]) -> Callable[[], Response]:
    """An admin's poll: unlike ``signed_in`` it does not restart the idle time (a live page
    left open must not keep a console session alive for ever: once idle, the polls end with
    a 401 and the page says so) and never redirects to the login (a script asked)."""

    @functools.wraps(view)
    def wrapped() -> Response:
        admin = auth.current_admin()
        if admin is None:
            return refused(401, "Signed out", "Your console session ended. Sign in again.")
        g.console_admin = admin
        return view()

    return wrapped


@bp.get("/logs/tail")
@watching
def tail() -> Response:
    """The rows after ``after`` (newest first) as an HTML fragment for ``logs.js``; the
    newest id in ``X-Last-Log-Id`` (``after`` itself when nothing is new)."""
    after = _log_id("after")
    if after is None:
        return refused(400, "No checkpoint", "Say after which log id (after=).")
    answer = api("GET", "/logs", query={**_filters(), "from": str(after),
                                        "take": str(TAIL_TAKE)})  # fmt: skip
    if not answer.ok:
        return refused(answer.status, "Not read", answer.message)
    rows = list(reversed(answer.data))
    resp = page("console/logs_rows.html", rows=rows)
    resp.headers["X-Last-Log-Id"] = rows[0]["log_id"] if rows else str(after)
    return resp


@bp.get("/logs/<log_id>")
@signed_in
def log_event(log_id: str) -> Response:
    answer = api("GET", "/logs/" + quote(log_id, safe=""))
    if (other := stale_or_refused(answer)) is not None:
        return other
    return page("console/logs_event.html", event=answer.data)


# ------------------------------------------------------------------------- log streams
def _stream_path(stream_id: str) -> str:
    return "/log-streams/" + quote(stream_id, safe="")


@bp.get("/logs/streams")
@signed_in
def streams() -> Response:
    answer = api("GET", "/log-streams")
    return page("console/logs_streams.html", streams=answer.data if answer.ok else [],
                error=None if answer.ok else answer.message)  # fmt: skip


@bp.route("/logs/streams/new", methods=["GET", "POST"])
@signed_in
def new_stream() -> Response:
    """``POST /log-streams``; the ``Authorization`` value is never rendered back, the signing
    secret is shown once."""
    form: dict[str, Any] = {"name": "", "endpoint": "", "content_type": CONTENT_TYPES[0],
                            "start_from": ""}  # fmt: skip
    error = None
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip()
                for k in ("name", "endpoint", "content_type", "start_from")}  # fmt: skip
        sink: dict[str, Any] = {"httpEndpoint": form["endpoint"],
                                "httpContentType": form["content_type"]}  # fmt: skip
        if token := request.form.get("authorization", "").strip():
            sink["httpAuthorization"] = token if " " in token else f"Bearer {token}"
        body: dict[str, Any] = {"name": form["name"], "sink": sink}
        if form["start_from"]:
            body["startFrom"] = form["start_from"]
        answer = api("POST", "/log-streams", json_body=body)
        if answer.ok:
            return page("console/logs_stream_secret.html", stream=answer.data)
        error = answer.message
    return page("console/logs_stream_form.html", 400 if error else 200, form=form, error=error,
                content_types=CONTENT_TYPES)  # fmt: skip


@bp.get("/logs/streams/<stream_id>")
@signed_in
def stream(stream_id: str) -> Response:
    answer = api("GET", _stream_path(stream_id))
    if (other := stale_or_refused(answer)) is not None:
        return other
    return page("console/logs_stream.html", stream=answer.data, etag=answer.etag,
                saved=request.args.get("saved") == "1")  # fmt: skip


@bp.post("/logs/streams/<stream_id>/status")
@signed_in
def stream_status(stream_id: str) -> Response:
    """Pause, or resume (``active``) from the checkpoint, with the page's ETag."""
    status = "paused" if request.form.get("status") == "paused" else "active"
    answer = api("PATCH", _stream_path(stream_id), json_body={"status": status},
                 headers=if_match())  # fmt: skip
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not changed", answer.message)
    return redirect(f"/admin/logs/streams/{quote(stream_id, safe='')}?saved=1", code=303)


@bp.post("/logs/streams/<stream_id>/delete")
@signed_in
def delete_stream(stream_id: str) -> Response:
    answer = api("DELETE", _stream_path(stream_id), headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not deleted", answer.message)
    return redirect("/admin/logs/streams", code=303)
