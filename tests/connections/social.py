"""Helpers of the social-login tests: an idp server that may reach loopback upstreams, a
connection to the real upstream (npm ``oidc-provider``, ``tests/connections/upstream.py``),
and a browser that goes idp -> upstream -> ``/login/callback`` -> the application."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.connections import service as connections
from idp.extensions import db, services
from tests.conftest import LiveServer, build_app, serving
from tests.connections.upstream import OidcUpstream
from tests.factories import TestClient
from tests.helpers import hidden_inputs, pkce, redeem

UPSTREAM_SETTINGS = {"CONNECTIONS_ALLOW_NETWORKS": "127.0.0.0/8", "CONNECTIONS_HTTP_TIMEOUT": 2.0}


@pytest.fixture(scope="module")
def social_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An idp server allowed to reach upstreams on loopback (module-scoped)."""
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, **UPSTREAM_SETTINGS)) as server:
        yield server


def add_connection(
    op: LiveServer, upstream: OidcUpstream, client: TestClient | None, *, strategy: str = "oidc",
    name: str | None = None, database: bool = True, base: dict[str, Any] | None = None,
    **options: Any,
) -> str:  # fmt: skip
    """A connection to ``upstream`` enabled for ``client``; its name. ``base``: the options
    (default: an ``oidc`` connection's), ``options`` on top."""
    name = name or "up-" + secrets.token_hex(3)
    upstream.allow_redirect_uri(f"{op.url}/login/callback/{name}")
    with op.app.app_context():
        connections.create_connection(
            db.session, name=name, strategy=strategy, display_name=f"Upstream {name}",
            options={**(upstream.options() if base is None else base), **options},
            box=services().box,
        )  # fmt: skip
        if client is not None:
            connections.enable(db.session, name, client.client_id)
            if not database:
                connections.disable(db.session, connections.DATABASE, client.client_id)
        db.session.commit()
    return name


@dataclass
class Arrival:
    """Where the browser ended: at the application (``params``) or on a page of idp."""

    status: int
    location: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    page: str = ""
    url: str = ""

    @property
    def code(self) -> str | None:
        return self.params.get("code")


class SocialBrowser:
    """A cookie-keeping browser at idp; the upstream's pages are driven by
    ``OidcUpstream.login`` (its own cookies, like another site's)."""

    def __init__(self, op: LiveServer, client: TestClient) -> None:
        self.op, self.client = op, client
        self.http = requests.Session()
        self.verifier, challenge = pkce()
        self.state = secrets.token_urlsafe(8)
        self.connection = ""  # the connection last chosen: its callback URL is used
        self.params = {
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": client.redirect_uri, "scope": "openid profile email",
            "state": self.state, "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge, "code_challenge_method": "S256",
        }  # fmt: skip

    def follow(self, resp: requests.Response) -> Arrival:
        """Follow idp's own redirects; stop at the first that leaves idp (the application or
        the upstream) or at a page."""
        for _ in range(10):
            if resp.is_redirect:
                target = resp.headers["Location"]
                target = target if target.startswith("http") else self.op.url + target
                if not target.startswith(self.op.url + "/"):
                    query = parse_qs(urlsplit(target).query)
                    flat = {k: v[0] for k, v in query.items()}
                    return Arrival(resp.status_code, target, flat, url=resp.url)
                resp = self.http.get(target, allow_redirects=False)
                continue
            return Arrival(resp.status_code, page=resp.text, url=resp.url)
        raise AssertionError("redirect loop at idp")

    def authorize(self, **extra: str) -> Arrival:
        params = {**self.params, **extra}
        self.connection = extra.get("connection", self.connection)
        url = self.op.url + "/authorize"
        return self.follow(self.http.get(url, params=params, allow_redirects=False))

    def press(self, page: Arrival, connection: str) -> Arrival:
        """The login page's "Continue with ..." button."""
        assert f'id="connection-{connection}"' in page.page, page.page[:800]
        self.connection = connection
        marker = f"/connection/{connection}"
        action = next(
            part.split('"')[0] for part in page.page.split('action="')[1:]
            if part.split('"')[0].endswith(marker)
        )  # fmt: skip
        fields = hidden_inputs(page.page.split(f'action="{action}"', 1)[1])
        resp = self.http.post(self.op.url + action, data=fields, allow_redirects=False)
        return self.follow(resp)

    def callback(
        self, params: dict[str, str], method: str = "GET", connection: str | None = None
    ) -> Arrival:
        url = f"{self.op.url}/login/callback/{connection or self.connection}"
        if method == "POST":
            return self.follow(self.http.post(url, data=params, allow_redirects=False))
        return self.follow(self.http.get(url, params=params, allow_redirects=False))

    def tokens(self, arrival: Arrival) -> dict[str, Any]:
        assert arrival.code, (arrival.status, arrival.params, arrival.page[:800])
        assert arrival.params.get("state") == self.state
        resp = redeem(self.op.url, self.client, arrival.code, self.verifier)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def upstream_login(
    op: LiveServer, upstream: OidcUpstream, client: TestClient, connection: str, login: str,
    *, browser: SocialBrowser | None = None, direct: bool = False,
) -> tuple[SocialBrowser, Arrival]:  # fmt: skip
    """The whole round trip: idp's page (or ``connection=``), the upstream's login as
    ``login``, idp's callback; returns where the browser ended."""
    browser = browser or SocialBrowser(op, client)
    if direct:
        sent = browser.authorize(connection=connection)
    else:
        sent = browser.press(browser.authorize(), connection)
    assert sent.location and sent.location.startswith(upstream.issuer), sent
    back = upstream.login(sent.location, login)
    return browser, browser.callback(back)
