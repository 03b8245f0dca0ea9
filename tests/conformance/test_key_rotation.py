"""Signing key rotation as operators expect it (OIDC Core §10.1.1), the clock moved through it:
a rotated-in key is published in the JWKS ``KEY_PUBLISH_BEFORE_SIGNING_SECONDS`` before it
signs; the key it replaces stays published while tokens it signed live, then drops out by
itself; a revoked key is out at once and its tokens are refused. The JWKS answer's max-age
fits in the overlap and it carries an ETag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from idp.core.errors import ConflictError
from idp.extensions import db, services
from idp.keys import service as keys
from idp.keys.models import SigningKey
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import jwt_parts, login_and_redeem

OVERLAP = 600
TTL = 3600  # ACCESS_TOKEN_TTL and ID_TOKEN_TTL; a retired key stays TTL + 300 s


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"KEY_PUBLISH_BEFORE_SIGNING_SECONDS": OVERLAP, "ACCESS_TOKEN_TTL": TTL,
                "ID_TOKEN_TTL": TTL}  # fmt: skip
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


@pytest.fixture(autouse=True)
def _one_fresh_key(live: LiveServer, clock: Any) -> Iterator[None]:
    """Each test starts from one current key: a moved clock leaves dates behind that the
    real time would read differently."""
    yield
    clock.reset()
    with live.app.app_context():
        db.session.query(SigningKey).delete()
        keys.create_key(db.session, services().box, "RS256")
        db.session.commit()


def rotate(op: Any) -> str:
    """What ``idp keys rotate`` and ``POST /api/v2/keys/signing/rotate`` do."""
    with op.app.app_context():
        cfg = services().config
        row = keys.rotate(db.session, services().box, "RS256", keys.publish_window(cfg),
                          keys.publish_before(cfg))  # fmt: skip
        db.session.commit()
        return row.kid


def revoke(op: Any, kid: str) -> None:
    with op.app.app_context():
        keys.revoke(db.session, kid)
        db.session.commit()


def states(op: Any) -> dict[str, str]:
    from idp.core import clock

    with op.app.app_context():
        return {r.kid: keys.state(r, clock.now()) for r in db.session.query(SigningKey)}


def jwks(op: Any) -> requests.Response:
    return requests.get(f"{op.url}/.well-known/jwks.json", timeout=30)


def kids(op: Any) -> set[str]:
    return {k["kid"] for k in jwks(op).json()["keys"]}


def tokens(op: Any, client: Any, user: Any) -> tuple[dict[str, Any], str]:
    """A login's tokens and the kid that signed them (the ID token's and the access token's)."""
    got = login_and_redeem(op.url, client, user)
    kid = jwt_parts(got["id_token"])[0]["kid"]
    assert jwt_parts(got["access_token"])[0]["kid"] == kid
    return got, kid


def userinfo(op: Any, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{op.url}/userinfo", headers=headers, timeout=30).status_code


def test_the_rotation_timeline(op: Any, clock: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    first, old = tokens(op, client, user)
    assert states(op)[old] == "current"

    new = rotate(op)
    # published, not signing: relying parties fetch it before any token names it
    assert states(op)[new] == "next" and kids(op) == {old, new}
    staged, kid = tokens(op, client, user)
    assert kid == old
    with pytest.raises(ConflictError, match="already staged"):
        rotate(op)

    clock.advance(OVERLAP)
    assert states(op) == {old: "retired", new: "current"}
    _, kid = tokens(op, client, user)
    assert kid == new
    assert kids(op) == {old, new}  # the old key's tokens still live
    assert userinfo(op, first["access_token"]) == 200
    assert userinfo(op, staged["access_token"]) == 200

    clock.advance(TTL)  # every token the old key signed has expired, the leeway has not
    assert old in kids(op) and userinfo(op, staged["access_token"]) == 401
    clock.advance(300)
    assert kids(op) == {new} and states(op)[old] == "unpublished"  # gone by itself


def test_the_jwks_answer_caches_within_the_overlap(op: Any) -> None:
    resp = jwks(op)
    control = resp.headers["Cache-Control"]
    assert control == "public, max-age=300"  # min(JWKS_MAX_AGE_SECONDS, overlap - key cache)
    etag = resp.headers["ETag"]
    again = requests.get(f"{op.url}/.well-known/jwks.json", headers={"If-None-Match": etag},
                         timeout=30)  # fmt: skip
    assert again.status_code == 304 and again.headers["ETag"] == etag
    new = rotate(op)
    changed = jwks(op)
    assert changed.headers["ETag"] != etag and new in changed.text


def test_a_short_overlap_shortens_the_cache(op: Any) -> None:
    config = {"KEY_PUBLISH_BEFORE_SIGNING_SECONDS": 60, "KEY_CACHE_SECONDS": 30,
              "JWKS_MAX_AGE_SECONDS": 300}  # fmt: skip
    assert keys.jwks_max_age(config) == 30
    config["KEY_PUBLISH_BEFORE_SIGNING_SECONDS"] = 20  # shorter than the key cache
    assert keys.jwks_max_age(config) == 0
    config["KEY_PUBLISH_BEFORE_SIGNING_SECONDS"] = 0  # no overlap: refetch on a new kid
    assert keys.jwks_max_age(config) == 300


def test_revoking_a_staged_key_keeps_the_current_one(op: Any, clock: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    _, current = tokens(op, client, user)
    staged = rotate(op)
    revoke(op, staged)
    assert staged not in kids(op)
    clock.advance(OVERLAP + 1)  # the staged key's start passes: nothing changes
    assert states(op)[current] == "current"
    assert tokens(op, client, user)[1] == current


def test_a_revoked_key_is_out_at_once_and_its_tokens_refused(op: Any, clock: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    before, old = tokens(op, client, user)
    new = rotate(op)
    with op.app.app_context():
        with pytest.raises(ConflictError, match="current signing key"):
            keys.revoke(db.session, old)  # it still signs
        db.session.rollback()
    clock.advance(OVERLAP)
    assert userinfo(op, before["access_token"]) == 200
    revoke(op, old)
    assert old not in kids(op) and new in kids(op)
    assert userinfo(op, before["access_token"]) == 401
    resp = requests.post(f"{op.url}/oauth/introspect", auth=client.basic,
                         data={"token": before["access_token"]}, timeout=30)  # fmt: skip
    assert resp.json() == {"active": False}
