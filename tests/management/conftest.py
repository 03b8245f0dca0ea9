"""A machine client of the management API (``<ISSUER>/api/v2/``) and a driver for its calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests

from idp.extensions import db
from idp.management.service import SCOPES, ensure_api, management_audience
from tests.factories import TestClient

ALL = list(SCOPES)


@dataclass
class Mgmt:
    """Calls ``/api/v2`` with a token of a client granted ``scopes``; every answer is kept so
    that a test can check that no response ever carried a secret value."""

    op: Any
    client: TestClient
    scopes: list[str]
    seen: list[str]
    default: str | None = None  # one token for every call that names none

    @property
    def audience(self) -> str:
        return management_audience(self.op.url)

    def token(self, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials", "audience": self.audience}
        if scope:
            data["scope"] = scope
        resp = requests.post(
            f"{self.op.url}/oauth/token", data=data, auth=self.client.basic, timeout=30
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def call(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is None:
            self.default = token = self.default or self.token()
        headers.setdefault("Authorization", f"Bearer {token}")
        resp = requests.request(
            method, f"{self.op.url}/api/v2{path}", headers=headers, timeout=60, **kwargs
        )
        self.seen.append(resp.text + str(dict(resp.headers)))
        return resp


def grant(op: Any, scopes: list[str]) -> TestClient:
    """An m2m client with a grant on the management API (created on first use, as the CLI's
    ``client-grants create`` does)."""
    with op.app.app_context():
        ensure_api(db.session, op.url)
        db.session.commit()
    client = op.factory.gen_client("m2m")
    op.factory.gen_client_grant(client.client_id, management_audience(op.url), scopes)
    return client


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])
