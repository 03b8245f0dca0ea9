"""Shared by the dynamic registration tests (RFC 7591, RFC 7592): a server with registration
on, initial access tokens made through the CLI, and a registration request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from idp.extensions import db, services
from idp.oauth import registration
from tests.conftest import LiveServer, build_app, serving

RP = "https://rp.test/cb"
SETTINGS = {"DYNAMIC_REGISTRATION_ENABLED": True, "DYNAMIC_REGISTRATION_REQUESTS_PER_IP": 10_000}


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("registration")
    with serving(lambda port: build_app(tmp, port, **SETTINGS)) as server:
        yield server


def initial_token(server: Any, expires_in: int | None = None, max_uses: int | None = None) -> str:
    """A new initial access token, as ``idp clients initial-token create`` makes one (the CLI
    itself: tests/cli/test_cli_initial_tokens.py; it talks to the instance's own database)."""
    with server.app.app_context():
        _, token = registration.create_initial_token(db.session, services().box, expires_in,
                                                     max_uses)  # fmt: skip
        db.session.commit()
    return token


def register(server: Any, metadata: Any, token: str | None = "", **kw: Any) -> requests.Response:
    """POST /oauth/register; ``token=""`` makes a fresh initial access token, None sends none."""
    if token == "":
        token = initial_token(server)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{server.url}/oauth/register", json=metadata, headers=headers,
                         timeout=30, **kw)  # fmt: skip


def web_client(**extra: Any) -> dict[str, Any]:
    return {"client_name": "Registered RP", "redirect_uris": [RP], **extra}


def manage(
    method: str, answer: dict[str, Any], token: str | None = None, **kw: Any
) -> requests.Response:
    """RFC 7592 on the registration_client_uri, with the answer's registration access token."""
    bearer = answer["registration_access_token"] if token is None else token
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.request(method, answer["registration_client_uri"], headers=headers,
                            timeout=30, **kw)  # fmt: skip
