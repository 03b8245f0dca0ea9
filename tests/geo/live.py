"""A live server with the test GeoIP database, and the drivers the geo tests share.

Clients reach the test server from 127.0.0.1, so the server that believes ``X-Forwarded-For``
trusts 127.0.0.1 as its proxy and the tests send the documentation addresses in that header
(what a real proxy would append). ``MFA_POLICY=never``: the geography action is then the only
thing that can ask for a second factor, so an MFA step proves the action asked for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from idp.actions import marketplace
from idp.actions import service as actions
from idp.extensions import db, services
from tests.conftest import LiveServer, _free_server, build_app
from tests.geo.mmdb import build
from tests.helpers import AuthResult, Browser, auth_params, pkce

NS = "https://claims.example.test"
PROBE_CLAIM = "https://geo.test/request"
PROBE = f"""
def on_execute_post_login(event, api):
    api.id_token.set_custom_claim("{PROBE_CLAIM}",
        {{"ip": event.request.ip, "geoip": event.request.geoip.to_dict()}})

def on_execute_credentials_exchange(event, api):
    api.access_token.set_custom_claim("{PROBE_CLAIM}",
        {{"ip": event.request.ip, "geoip": event.request.geoip.to_dict()}})
"""


@contextmanager
def geo_server(tmp_path_factory: pytest.TempPathFactory, **overrides: Any) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    geoip_db = build(tmp_path_factory.mktemp("geoip") / "GeoIP2-City-Test.mmdb")
    settings = {"GEOIP_DB": str(geoip_db), "MFA_POLICY": "never", **overrides}
    app, server = _free_server(lambda port: build_app(tmp, port, **settings))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(app, server)
    finally:
        server.shutdown()
        with app.app_context():
            services().actions.close()
            db.engine.dispose()


def install(live: LiveServer, slug: str, **config: str) -> None:
    """``idp marketplace install SLUG --bind --config k=v ...``, through the same function."""
    with live.app.app_context():
        svc = services()
        marketplace.install(
            db.session, actions.Limits.from_config(svc.config), svc.box, svc.actions.deps_root,
            marketplace.get(slug), config=config, bind=True, by="tests",
        )  # fmt: skip
        db.session.commit()
        svc.actions.bump()


def browser_from(live: LiveServer, forwarded_for: str | None) -> Browser:
    """A browser whose every request (login, MFA pages) carries ``X-Forwarded-For``."""
    browser = Browser(live.url)
    if forwarded_for is not None:
        browser.http.headers["X-Forwarded-For"] = forwarded_for
    return browser


def start_login(browser: Browser, client: Any, user: Any) -> tuple[AuthResult, str]:
    verifier, challenge = pkce()
    return browser.authorize(auth_params(client, challenge), user), verifier


def asks_for_mfa(result: AuthResult) -> bool:
    """The browser stopped at the MFA step: no redirect to the app, no code, no error."""
    return result.location is None and result.status == 200 and "/mfa" in result.page
