"""``idp clients create|update --initiate-login-uri``: where IdP-initiated SAML SSO sends the
browser to have the app start its own login (OIDC Core §4)."""

from __future__ import annotations

import re
from typing import Any

from tests.actions.test_lifecycle import idp, idp_fails


def test_an_initiate_login_uri_is_set_checked_and_removed(op: Any) -> None:
    made = idp(
        op, "clients", "create", "--name", "Portal", "--type", "regular_web",
        "--redirect-uri", "https://portal.test/cb",
        "--initiate-login-uri", "https://portal.test/login",
    )  # fmt: skip
    assert made["initiate_login_uri"] == "https://portal.test/login"
    cid = made["client_id"]
    # Letters and digits only: an id with a leading "-" was read by click as an option.
    assert re.fullmatch(r"[A-Za-z0-9]{32}", cid)
    changed = idp(op, "clients", "update", cid, "--initiate-login-uri", "http://127.0.0.1:9/in")
    assert changed["initiate_login_uri"] == "http://127.0.0.1:9/in"  # loopback may be http
    for bad in ("http://portal.test/login", "https://portal.test/login#x", "javascript:x"):
        refused = idp_fails(op, "clients", "update", cid, "--initiate-login-uri", bad)
        assert refused.startswith("Error: ") and bad in refused
    assert (
        idp(op, "clients", "update", cid, "--initiate-login-uri", "")["initiate_login_uri"] is None
    )
    listed = {c["client_id"]: c for c in idp(op, "clients", "list")}
    assert listed[cid]["initiate_login_uri"] is None
