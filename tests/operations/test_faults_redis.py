"""Redis goes away and comes back (issue 17, faults): attack protection counts in the database
meanwhile, with a logged warning, and logins and sessions keep working; back, Redis again.

A private ``redis-server`` is killed and restarted (the machine's shared one is left alone)."""

from __future__ import annotations

import logging
from typing import Any

import requests

from idp.extensions import db, services
from idp.protection.models import ProtectionCounter
from tests.conformance._dpop_helpers import new_key, proof
from tests.conftest import build_app, serving
from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce, redeem
from tests.operations.private_servers import private_redis


def _attempt(base: str, client: Any, email: str, password: str) -> int:
    """One login through the form; 303 is a success, 401 a refusal."""
    http = requests.Session()
    page = http.get(f"{base}/authorize", params=auth_params(client, pkce()[1]), timeout=30)
    assert page.status_code == 200, page.text[:300]
    action = login_form_action(page.text)
    assert action is not None
    fields = hidden_inputs(page.text)
    fields.update(email=email, password=password)
    resp = http.post(base + action, data=fields, allow_redirects=False, timeout=30)
    assert resp.status_code in (303, 401), (resp.status_code, resp.text[:300])
    return resp.status_code


def _db_counters(app: Any) -> int:
    with app.app_context():
        return db.session.query(ProtectionCounter).count()


def test_redis_down_protection_uses_the_database_then_redis_again(tmp_path, caplog, clock):
    caplog.set_level(logging.WARNING, logger="idp.protection.stores")
    with private_redis() as redis_server:
        r = redis_server.client()
        settings = {"REDIS_URL": redis_server.url, "BRUTE_FORCE_MAX_ATTEMPTS": 3}
        with serving(lambda port: build_app(tmp_path, port, **settings)) as live:
            base, factory = live.url, live.factory
            client = factory.gen_client()
            victim, other, third, fourth = (factory.gen_user() for _ in range(4))
            browser = Browser(base)  # a session made while Redis is up
            verifier, challenge = pkce()
            first = browser.authorize(auth_params(client, challenge), other)
            assert first.code and redeem(base, client, first.code, verifier).status_code == 200

            assert _attempt(base, client, victim.email, "wrong-0") == 401
            assert list(r.scan_iter(match="idp:c:uip:*")), "counted in Redis"
            assert _db_counters(live.app) == 0

            redis_server.stop()
            for n in (1, 2, 3):  # the third failure reaches BRUTE_FORCE_MAX_ATTEMPTS
                assert _attempt(base, client, victim.email, f"wrong-{n}") == 401
            warnings = [rec.getMessage() for rec in caplog.records]
            assert any("Redis unreachable" in m for m in warnings), warnings
            assert _db_counters(live.app) > 0, "counted in the database meanwhile"
            # still protected: blocked, even with the right password
            assert _attempt(base, client, victim.email, victim.password) == 401
            # everyone else logs in, and the session made before the outage still works
            assert _attempt(base, client, third.email, third.password) == 303
            verifier, challenge = pkce()
            again = browser.authorize(auth_params(client, challenge))
            assert again.code and not again.login_shown, again
            assert redeem(base, client, again.code, verifier).status_code == 200

            redis_server.start()  # same port, empty
            clock.advance(6)  # past the fail-over's retry interval
            assert _attempt(base, client, fourth.email, "wrong") == 401
            assert any("Redis reachable again" in rec.getMessage() for rec in caplog.records)
            assert list(r.scan_iter(match="idp:c:uip:*")), "counted in Redis again"
            # the block recorded during the outage still holds
            assert _attempt(base, client, victim.email, victim.password) == 401
            with live.app.app_context():
                assert services().shields.unblock(victim.email) > 0
                db.session.commit()
            assert _attempt(base, client, victim.email, victim.password) == 303


def test_redis_down_refuses_what_only_redis_can_check(tmp_path):
    """A DPoP proof's single use is recorded in Redis, shared by the instances: with Redis down
    a proof cannot be checked for replay, so the token request is a 503 (fail closed), never a
    500 nor a token; back, the same request succeeds."""
    with private_redis() as redis_server:
        settings = {"REDIS_URL": redis_server.url, "DPOP_ENABLED": True}
        with serving(lambda port: build_app(tmp_path, port, **settings)) as live:
            client, audience = live.factory.m2m()
            url, key = f"{live.url}/oauth/token", new_key()

            def token() -> requests.Response:
                return requests.post(url, auth=client.basic, timeout=30,
                                     headers={"DPoP": proof(key, "POST", url)},
                                     data={"grant_type": "client_credentials",
                                           "audience": audience})  # fmt: skip

            assert token().json()["token_type"] == "DPoP"
            redis_server.stop()
            down = token()
            assert down.status_code == 503, down.text
            assert down.headers.get("Retry-After", "").isdigit()
            assert "access_token" not in down.json()
            redis_server.start()
            assert token().status_code == 200
