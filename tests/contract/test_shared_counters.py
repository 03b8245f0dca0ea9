"""Two server instances with IDP_REDIS_URL share one view of the failures: attempts counted by
one block the pair on the other."""

from __future__ import annotations

import re

import pytest

from idp import create_app
from idp.extensions import db
from tests.conftest import FAST_SETTINGS, TEST_DB_URL, build_app
from tests.factories import Factory
from tests.helpers import auth_params, login_form_action, pkce

REDIS_URL = "redis://127.0.0.1:6379/14"


def _attempt(app, client, user, password):
    http = app.test_client()
    page = http.get(
        "/authorize",
        query_string=auth_params(client, pkce()[1]),
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    assert page.status_code == 200  # the login form, shown by /authorize itself
    action = login_form_action(page.get_data(as_text=True))
    assert action is not None
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    return http.post(
        action,
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
        data={"csrf_token": token.group(1), "email": user.email, "password": password},
    )


def test_failures_on_one_instance_block_on_the_other(tmp_path):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"no Redis: {exc}")
    shields = {"REDIS_URL": REDIS_URL, "BRUTE_FORCE_MAX_ATTEMPTS": 2}
    one = build_app(tmp_path, 5000, **shields)
    config = dict(FAST_SETTINGS, ISSUER="http://127.0.0.1:5000", **shields)
    if TEST_DB_URL:
        config["DATABASE_URL"] = TEST_DB_URL
    two = create_app(config, instance_path=tmp_path)
    try:
        factory = Factory(one)
        client, user = factory.gen_client(), factory.gen_user()
        assert _attempt(one, client, user, "wrong-1").status_code == 401
        assert _attempt(two, client, user, "wrong-2").status_code == 401
        # blocked everywhere now, even with the right password
        assert _attempt(one, client, user, user.password).status_code == 401
        assert _attempt(two, client, user, user.password).status_code == 401
        # and the counting happened in Redis, not in the (also shared) database
        assert list(redis.Redis.from_url(REDIS_URL).scan_iter(match="idp:b:uip:*"))
        from idp.protection.models import ProtectionCounter

        with one.app_context():
            assert db.session.query(ProtectionCounter).count() == 0
        from idp.extensions import services

        with two.app_context():
            services().shields.unblock(user.email)
        assert _attempt(one, client, user, user.password).status_code == 303
    finally:
        for app in (one, two):
            with app.app_context():
                db.engine.dispose()
