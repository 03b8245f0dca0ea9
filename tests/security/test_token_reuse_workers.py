"""A token revoked through one worker is never handed out again by another worker of the same
machine (idp/oauth/token_reuse.py), while reuse itself keeps working in both."""

from __future__ import annotations

import base64

from idp import create_app
from idp.extensions import db
from tests.conftest import FAST_SETTINGS, TEST_DB_URL, build_app
from tests.factories import Factory


def _token(client, cred, audience):
    auth = "Basic " + base64.b64encode(f"{cred.client_id}:{cred.client_secret}".encode()).decode()
    resp = client.post(
        "/oauth/token",
        headers={"Authorization": auth},
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["access_token"]


def test_revocation_in_one_worker_stops_reuse_in_another(tmp_path):
    worker_a = build_app(tmp_path, 5000, CC_TOKEN_REUSE_SECONDS=5)  # opt-in
    config = dict(FAST_SETTINGS, ISSUER="http://127.0.0.1:5000", CC_TOKEN_REUSE_SECONDS=5)
    if TEST_DB_URL:
        config["DATABASE_URL"] = TEST_DB_URL
    worker_b = create_app(config, instance_path=tmp_path)  # same instance, same database
    try:
        _check(worker_a, worker_b)
    finally:
        for app in (worker_a, worker_b):
            with app.app_context():
                db.engine.dispose()


def _check(worker_a, worker_b):
    cred, audience = Factory(worker_a).m2m()
    a, b = worker_a.test_client(), worker_b.test_client()

    token = _token(a, cred, audience)
    assert _token(a, cred, audience) == token  # reused within the window
    assert _token(b, cred, audience) != token  # each worker has its own map
    revoke = b.post(
        "/oauth/revoke", data={"token": token}, auth=(cred.client_id, cred.client_secret)
    )
    assert revoke.status_code == 200
    fresh = _token(a, cred, audience)
    assert fresh != token
    intro = a.post(
        "/oauth/introspect", data={"token": fresh}, auth=(cred.client_id, cred.client_secret)
    ).get_json()
    assert intro["active"] is True
    assert _token(a, cred, audience) == fresh  # and reuse resumes afterwards
