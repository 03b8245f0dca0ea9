"""The console is a client of idp's own HTTP API, called in-process: each operation is a
request dispatched through the application (its routes, validation, ETags, tenant log), so
whatever the console does, automation can do through ``/api/v2`` the same way.

``PRINCIPAL`` is the WSGI environ key naming the signed-in admin. Only code in this process
can set an environ key (a client's headers arrive as ``HTTP_*``), and ``idp.management.base``
accepts it in place of a Bearer token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request
from werkzeug.test import EnvironBuilder

from idp.core.net import client_ip
from idp.extensions import db, services

PRINCIPAL = "idp.console.admin"


@dataclass(frozen=True)
class Answer:
    """An internal request's answer: its status, JSON body (or None) and ETag."""

    status: int
    data: Any
    etag: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The API's reason for a refusal (Auth0's ``message``, OAuth's description)."""
        if isinstance(self.data, dict):
            for key in ("message", "error_description", "error"):
                if isinstance(self.data.get(key), str):
                    return str(self.data[key])
        return f"The request was refused ({self.status})."


def dispatch(
    method: str,
    path: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    principal: dict[str, Any] | None = None,
) -> Answer:
    """Send one request through this application as if it came from the browser's address."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # the browser's address as the tenant log records it (behind a trusted proxy, the client)
    address = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                        services().trusted_proxies)  # fmt: skip
    builder = EnvironBuilder(
        # an identifier holding ? or # stays in the path: never a query the caller did not send
        path=path.replace("?", "%3F").replace("#", "%23"), method=method, json=json_body,
        data=form, query_string=query, headers=list((headers or {}).items()),
        base_url=request.host_url,
        environ_base={"REMOTE_ADDR": address or "127.0.0.1",
                      "HTTP_USER_AGENT": request.headers.get("User-Agent", "")},
    )  # fmt: skip
    environ = builder.get_environ()
    if principal is not None:
        environ[PRINCIPAL] = principal
    # The inner request shares this request's app context (its database session: on SQLite a
    # second one would wait on this one's write lock); what it leaves in ``g`` is dropped so
    # that the next inner request starts clean, and a failure's transaction is rolled back.
    before = set(g)
    with app.request_context(environ):
        resp = app.full_dispatch_request()
    for name in set(g) - before:
        g.pop(name, None)
    if resp.status_code >= 500:
        db.session.rollback()
    raw = resp.get_data()
    data = None
    if raw and resp.mimetype == "application/json":
        data = json.loads(raw)
    return Answer(resp.status_code, data, resp.headers.get("ETag"))
