"""``idp clients initial-token create|list|revoke``: the initial access tokens of dynamic
client registration (RFC 7591 §3), printed once, listed without the token, revoked by id."""

from __future__ import annotations

from typing import Any

from tests.actions.test_lifecycle import idp, idp_fails


def test_create_list_revoke(op: Any) -> None:
    made = idp(op, "clients", "initial-token", "create", "--expires-in", "600", "--max-uses", "2")
    assert made["id"].startswith("iat_") and len(made["token"]) >= 43
    assert made["max_uses"] == 2 and made["uses"] == 0
    assert made["expires_at"] - made["created_at"] == 600
    listed = {t["id"]: t for t in idp(op, "clients", "initial-token", "list")}
    assert made["id"] in listed and "token" not in listed[made["id"]]
    assert idp(op, "clients", "initial-token", "revoke", made["id"]) == {"revoked": made["id"]}
    listed = {t["id"]: t for t in idp(op, "clients", "initial-token", "list")}
    assert listed[made["id"]]["revoked_at"] is not None
    again = idp_fails(op, "clients", "initial-token", "revoke", made["id"])
    assert again.startswith("Error: ") and made["id"] in again
    bad = idp_fails(op, "clients", "initial-token", "create", "--max-uses", "0")
    assert bad.startswith("Error: ")
