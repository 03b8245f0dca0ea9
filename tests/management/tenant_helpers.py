"""Shared by the tenant-level resources' tests (branding, tenant settings, attack protection,
guardian factors): Auth0's error shape, a login page, and a fixture putting the tenant settings
back to their defaults after each test (a module shares one server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import delete, select

from idp.audit.models import LogEvent
from idp.extensions import db
from idp.protection.models import ProtectionCounter
from idp.tenant.models import TenantSetting
from idp.tenant.settings import tenant
from tests.helpers import auth_params, login_form_action, pkce
from tests.management.conftest import ALL, Mgmt, grant


def problem(resp: Any, status: int, text: str, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = dict(resp.json())
    assert body["statusCode"] == status and text in body["message"], body
    if code:
        assert body["errorCode"] == code, body
    return body


@pytest.fixture
def defaults(op: Any) -> Iterator[None]:
    """The test may change tenant settings; afterwards they are the configuration's again."""
    yield
    with op.app.app_context():
        db.session.execute(delete(TenantSetting))
        db.session.execute(delete(ProtectionCounter))  # blocks and counts of the test's IPs
        db.session.commit()
        tenant().invalidate()


def login_page(op: Any, http: requests.Session | None = None) -> requests.Response:
    client = op.factory.gen_client()
    http = http or requests.Session()
    resp = http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1]), timeout=30)
    assert resp.status_code == 200 and login_form_action(resp.text), resp.text[:500]
    return resp


def writes(op: Any, resource: str) -> list[LogEvent]:
    """The management.write tenant log events of ``resource``, oldest first."""
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "management.write").order_by(LogEvent.id)
        ).all()
        for row in rows:
            db.session.expunge(row)
    return [r for r in rows if r.details.get("resource") == resource]


def check_scopes(mgmt: Mgmt, op: Any, method: str, path: str, scope: str, body: Any) -> None:
    """401 without a token or with a bad one, 403 naming ``scope`` without it; the one scope
    is enough."""
    resp = mgmt.call(method, path, token="", json=body, headers={"Authorization": ""})
    problem(resp, 401, "Missing authentication")
    problem(mgmt.call(method, path, token="not.a.jwt", json=body), 401, "", "invalid_token")
    others = " ".join(s for s in ALL if s != scope)
    resp = mgmt.call(method, path, token=mgmt.token(others), json=body)
    problem(resp, 403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope")
    assert f'scope="{scope}"' in resp.headers["WWW-Authenticate"]
    narrow = Mgmt(op, grant(op, [scope]), [scope], [])
    resp = narrow.call(method, path, json=body)
    assert resp.status_code in (200, 204), resp.text


def no_values(events: list[LogEvent], *values: str) -> None:
    dumped = json.dumps([(e.description, e.details) for e in events])
    for value in values:
        assert value not in dumped
