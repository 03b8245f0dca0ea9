"""``/api/v2/keys/signing`` (issue 14): list and read with Auth0's flags (current, previous,
next, revoked) and never a private half; rotate makes a new current key while the old one
still verifies its tokens; revoke takes a key out of the JWKS at once (its tokens stop
working) and is refused (409) for the current key; 401, 403 naming the scope, 404, 412 on a
stale ``If-Match``; each write a ``management.write`` tenant log event."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import requests
from joserfc.jwk import RSAKey
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem


def jwks_kids(op: Any) -> set[str]:
    resp = requests.get(f"{op.url}/.well-known/jwks.json", timeout=30)
    return {k["kid"] for k in resp.json()["keys"]}


def rotate(mgmt: Mgmt) -> dict[str, Any]:
    resp = mgmt.call("POST", "/keys/signing/rotate")
    assert resp.status_code == 201, resp.text
    mgmt.default = None  # the next call gets a token signed by the new key
    return dict(resp.json())


def keys(mgmt: Mgmt) -> dict[str, dict[str, Any]]:
    resp = mgmt.call("GET", "/keys/signing")
    assert resp.status_code == 200, resp.text
    return {k["kid"]: k for k in resp.json()}


def test_list_read_and_the_public_key_only(mgmt: Mgmt, op: Any) -> None:
    listed = keys(mgmt)
    [current] = [k for k in listed.values() if k["current"]]
    assert current["alg"] == "RS256" and current["kid"] in jwks_kids(op)
    assert current["next"] is False and current["revoked"] is False
    assert "revoked_at" not in current and "current_until" not in current
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", current["current_since"])
    assert current["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    der = RSAKey.import_key(current["pem"]).as_der(private=False)
    digest = hashlib.sha256(der).hexdigest().upper()
    assert current["thumbprint"] == digest and current["fingerprint"].replace(":", "") == digest
    assert len(current["fingerprint"].split(":")) == 32
    got = mgmt.call("GET", f"/keys/signing/{current['kid']}")
    assert got.json() == current and got.headers["ETag"].startswith('"')
    assert mgmt.call("GET", f"/keys/signing/{current['kid']}",
                     headers={"If-None-Match": got.headers["ETag"]}).status_code == 304  # fmt: skip
    problem(mgmt.call("GET", "/keys/signing/nope"), 404, "no signing key", "inexistent_resource")


def test_rotate_then_revoke_the_previous_key(mgmt: Mgmt, op: Any) -> None:
    before = next(k for k in keys(mgmt).values() if k["current"])
    old_token = mgmt.token()  # signed by the key about to be retired
    made = rotate(mgmt)
    assert made["current"] is True and made["kid"] != before["kid"]
    assert made["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    listed = keys(mgmt)
    old = listed[before["kid"]]
    assert old["current"] is False and old["previous"] is True and old["current_until"]
    assert [k for k in listed.values() if k["current"]] == [listed[made["kid"]]]
    assert {before["kid"], made["kid"]} <= jwks_kids(op)
    assert mgmt.call("GET", "/keys/signing", token=old_token).status_code == 200  # still good
    problem(mgmt.call("PUT", f"/keys/signing/{made['kid']}/revoke"), 409,
            "is the current signing key: rotate first", "conflict")  # fmt: skip
    resp = mgmt.call("PUT", f"/keys/signing/{before['kid']}/revoke")
    assert resp.status_code == 200, resp.text
    revoked = resp.json()
    assert revoked["kid"] == before["kid"] and revoked["revoked"] is True
    assert revoked["revoked_at"] and revoked["previous"] is False
    after = mgmt.call("GET", f"/keys/signing/{before['kid']}")
    assert resp.headers["ETag"] == after.headers["ETag"]  # the revocation answers the key
    assert before["kid"] not in jwks_kids(op)
    problem(mgmt.call("GET", "/keys/signing", token=old_token), 401, "", "invalid_token")
    again = mgmt.call("PUT", f"/keys/signing/{before['kid']}/revoke")
    assert again.status_code == 200 and again.json() == revoked  # idempotent
    problem(mgmt.call("PUT", "/keys/signing/nope/revoke"), 404, "no signing key")
    assert "PRIVATE" not in "".join(mgmt.seen)


def test_if_match_refuses_a_stale_revoke(mgmt: Mgmt) -> None:
    first = rotate(mgmt)
    tag = mgmt.call("GET", f"/keys/signing/{first['kid']}").headers["ETag"]
    rotate(mgmt)  # first becomes the previous key: another version of it
    path = f"/keys/signing/{first['kid']}/revoke"
    problem(mgmt.call("PUT", path, headers={"If-Match": tag}), 412, "If-Match",
            "precondition_failed")  # fmt: skip
    assert keys(mgmt)[first["kid"]]["revoked"] is False
    fresh = mgmt.call("GET", f"/keys/signing/{first['kid']}").headers["ETag"]
    assert mgmt.call("PUT", path, headers={"If-Match": fresh}).status_code == 200


ROUTES = [
    ("GET", "/keys/signing", "read:signing_keys"),
    ("GET", "/keys/signing/{kid}", "read:signing_keys"),
    ("POST", "/keys/signing/rotate", "create:signing_keys"),
    ("PUT", "/keys/signing/{kid}/revoke", "update:signing_keys"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    target = rotate(mgmt)  # target's predecessor is retired: revocable
    previous = next(k for k in keys(mgmt).values() if k["previous"])
    path = path.format(kid=previous["kid"] if "revoke" in path else target["kid"])
    resp = mgmt.call(method, path, token="", headers={"Authorization": ""})
    problem(resp, 401, "Missing authentication")
    problem(mgmt.call(method, path, token="not.a.jwt"), 401, "", "invalid_token")
    others = " ".join(s for s in ALL if s != scope)
    resp = mgmt.call(method, path, token=mgmt.token(others))
    problem(resp, 403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope")
    assert f'scope="{scope}"' in resp.headers["WWW-Authenticate"]
    narrow = Mgmt(op, grant(op, [scope]), [scope], [])
    resp = narrow.call(method, path)
    assert resp.status_code in (200, 201), resp.text  # the one scope is enough


def test_writes_are_tenant_log_events(mgmt: Mgmt, op: Any) -> None:
    made = rotate(mgmt)
    rotate(mgmt)
    mgmt.call("PUT", f"/keys/signing/{made['kid']}/revoke")
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "management.write").order_by(LogEvent.id)
        ).all()
        mine = [r for r in rows if r.details.get("target") == made["kid"]]
        assert [r.details["operation"] for r in mine] == [
            "rotate_signing_key",
            "revoke_signing_key",
        ]
        assert {r.client_id for r in mine} == {mgmt.client.client_id}
        assert mine[0].details["resource"] == "keys" and mine[1].details["method"] == "PUT"
        assert mine[0].description == f"Rotate the signing key ({made['kid']})"


def test_the_cli_revokes_too(tmp_path: Any) -> None:
    """``idp keys revoke KID``: the same service; the current key is refused. ``idp keys
    rotate`` stages (the instance's default overlap), ``--now`` signs at once."""
    import json

    from click.testing import CliRunner

    from idp.cli import main

    def idp(*argv: str, code: int = 0) -> Any:
        result = CliRunner().invoke(main, ["--instance", str(tmp_path), "--json", *argv])
        assert result.exit_code == code, result.output
        return json.loads(result.output) if code == 0 else result.output

    def states() -> dict[str, str]:
        return {k["kid"]: k["status"] for k in idp("keys", "list")}

    idp("init")
    [first] = idp("keys", "list")
    staged = idp("keys", "rotate")
    assert states() == {first["kid"]: "active", staged["kid"]: "next"}
    assert "already staged" in idp("keys", "rotate", code=1)
    assert idp("keys", "revoke", staged["kid"])["kid"] == staged["kid"]  # before it signs
    second = idp("keys", "rotate", "--now")
    assert "is the current signing key" in idp("keys", "revoke", second["kid"], code=1)
    assert idp("keys", "revoke", first["kid"])["kid"] == first["kid"]
    assert states() == {first["kid"]: "revoked", staged["kid"]: "revoked",
                        second["kid"]: "active"}  # fmt: skip
