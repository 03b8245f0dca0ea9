"""Drivers of the device flow: the device's two requests and a person at ``/device``."""

from __future__ import annotations

from typing import Any

import requests

from idp.extensions import db
from idp.oauth import service as oauth
from idp.oauth.models import Client
from tests.factories import TestClient, TestUser
from tests.helpers import hidden_inputs, login_form_action

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def allow_device(server: Any, client: TestClient, *grants: str) -> None:
    """Give ``client`` the device grant (and ``grants``) as the clients API does."""
    with server.app.app_context():
        row = db.session.get(Client, client.client_id)
        assert row is not None
        wanted = list(dict.fromkeys([*row.grant_types, DEVICE_GRANT, *grants]))
        oauth.update_client(db.session, client.client_id, grant_types=wanted)
        db.session.commit()


def device_client(server: Any, app_type: str = "native", first_party: bool = True) -> TestClient:
    client = server.factory.gen_client(app_type, first_party=first_party)
    allow_device(server, client)
    return client


def _auth(client: TestClient, data: dict[str, Any]) -> tuple[str, str] | None:
    if client.client_secret is None:
        data["client_id"] = client.client_id
        return None
    return client.basic


def start(base: str, client: TestClient, **extra: Any) -> requests.Response:
    """§3.1: the device authorization request."""
    data: dict[str, Any] = {"scope": "openid offline_access", **extra}
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(f"{base}/oauth/device/code", data=data, auth=_auth(client, data))


def started(base: str, client: TestClient, **extra: Any) -> dict[str, Any]:
    resp = start(base, client, **extra)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def poll(base: str, client: TestClient, device_code: str, **extra: Any) -> requests.Response:
    """§3.4: the device access token request."""
    data: dict[str, Any] = {"grant_type": DEVICE_GRANT, "device_code": device_code, **extra}
    return requests.post(f"{base}/oauth/token", data=data, auth=_auth(client, data))


def error_of(resp: requests.Response) -> str:
    return str(resp.json().get("error"))


class Person:
    """A browser at the verification page: types the code, signs in, decides."""

    def __init__(self, base: str, ip: str | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        if ip is not None:
            self.http.headers["X-Forwarded-For"] = ip

    def enter(self, user_code: str) -> requests.Response:
        """GET the form, POST the code; the answer is not followed."""
        page = self.http.get(f"{self.base}/device")
        fields = hidden_inputs(page.text) | {"user_code": user_code}
        return self.http.post(f"{self.base}/device", data=fields, allow_redirects=False)

    def go(
        self,
        user_code: str,
        user: TestUser | None,
        decision: str | None = "allow",
        consent: str = "allow",
    ) -> requests.Response:
        """Enter the code and follow the pages: the login form (as ``user``), a consent page,
        then the approval page answered with ``decision`` (None: stop there)."""
        resp = self.enter(user_code)
        for _ in range(12):
            if resp.status_code in (302, 303):
                location = resp.headers["Location"]
                target = location if location.startswith("http") else self.base + location
                resp = self.http.get(target, allow_redirects=False)
                continue
            action = login_form_action(resp.text) if resp.status_code == 200 else None
            if action is not None and user is not None:
                fields = hidden_inputs(resp.text) | {"email": user.email, "password": user.password}
                resp = self.http.post(self.base + action, data=fields, allow_redirects=False)
                continue
            is_form = resp.status_code == 200 and 'name="decision"' in resp.text
            if is_form and "/consent" in resp.url:
                fields = hidden_inputs(resp.text) | {"decision": consent}
                resp = self.http.post(resp.url, data=fields, allow_redirects=False)
                continue
            if is_form and "/device/" in resp.url and decision is not None:
                fields = hidden_inputs(resp.text) | {"decision": decision}
                resp = self.http.post(resp.url, data=fields, allow_redirects=False)
                decision = None
                continue
            return resp
        raise AssertionError("redirect loop")
