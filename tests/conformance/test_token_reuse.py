"""Client-credentials token reuse (idp's design; see idp/oauth/token_reuse.py): opt-in
(``CC_TOKEN_REUSE_SECONDS``, default 0), so this module's server turns it on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from idp.extensions import db
from tests.conftest import LiveServer, build_app, serving
from tests.factories import Factory
from tests.helpers import jwt_parts

WINDOW = 5


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, CC_TOKEN_REUSE_SECONDS=WINDOW)) as server:
        yield server


def test_off_by_default_every_token_is_signed(tmp_path: Path) -> None:
    app = build_app(tmp_path, 5000, DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}")
    assert app.config["CC_TOKEN_REUSE_SECONDS"] == 0
    cred, audience = Factory(app).m2m()
    http = app.test_client()
    data = {"grant_type": "client_credentials", "audience": audience}
    tokens = [
        http.post("/oauth/token", data=data, auth=(cred.client_id, cred.client_secret))
        for _ in range(2)
    ]
    assert all(t.status_code == 200 for t in tokens)
    assert tokens[0].get_json()["access_token"] != tokens[1].get_json()["access_token"]
    with app.app_context():
        db.engine.dispose()


def _token(op, client, audience, **extra):
    resp = requests.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "client_credentials", "audience": audience, **extra},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_same_request_within_window_gets_same_token_with_true_expires_in(op, clock):
    client, audience = op.factory.m2m(["read:things"])
    first = _token(op, client, audience)
    clock.advance(2)
    second = _token(op, client, audience)
    assert second["access_token"] == first["access_token"]
    exp = jwt_parts(second["access_token"])[1]["exp"]
    assert second["expires_in"] == exp - clock.now()
    assert second["expires_in"] < first["expires_in"]


def test_window_end_scope_and_client_give_fresh_tokens(op, clock):
    client, audience = op.factory.m2m(["read:things", "write:things"])
    other, _ = op.factory.m2m(["read:things"])
    op.factory.gen_client_grant(other.client_id, audience, ["read:things"])
    base = _token(op, client, audience)["access_token"]
    assert _token(op, client, audience, scope="read:things")["access_token"] != base
    assert _token(op, other, audience)["access_token"] != base
    assert op.app.config["CC_TOKEN_REUSE_SECONDS"] == WINDOW
    clock.advance(WINDOW)
    assert _token(op, client, audience)["access_token"] != base


def test_revoked_token_is_not_handed_out_again(op):
    client, audience = op.factory.m2m()
    token = _token(op, client, audience)["access_token"]
    assert (
        requests.post(
            f"{op.url}/oauth/revoke", auth=client.basic, data={"token": token}
        ).status_code
        == 200
    )
    fresh = _token(op, client, audience)["access_token"]
    assert fresh != token
    active = requests.post(
        f"{op.url}/oauth/introspect", auth=client.basic, data={"token": fresh}
    ).json()
    assert active["active"] is True
