"""Interop with a strict third-party relying party: npm ``openid-client`` v6, unmodified.

``openid_client_flow.mjs`` runs discovery, the authorization code flow with PKCE, state and
nonce (driving idp's login form with ``fetch`` and a cookie jar), the code exchange (the library
validates the ID token signature, ``iss``, ``aud``, ``exp``, ``nonce`` and the RFC 9207 ``iss``
authorization response parameter), userinfo and a refresh. Nothing of ours sits between the
library and the server. See TESTING-REAL-PARTS.md §6.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("openid_client_flow.mjs")
PACKAGE = ROOT / "node_modules" / "openid-client" / "package.json"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(
        not PACKAGE.exists(), reason="npm openid-client is not installed (run `npm ci`)"
    ),
]


def _flow(op: Any, client: Any, user: Any, auth_mode: str) -> dict[str, Any]:
    assert NODE is not None
    proc = subprocess.run(
        [
            NODE,
            str(SCRIPT),
            op.url,
            client.client_id,
            client.client_secret,
            client.redirect_uri,
            user.email,
            user.password,
            auth_mode,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,  # node resolves openid-client from ROOT/node_modules
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-2000:])
    return dict(result)


def test_openid_client_package_is_v6():
    version = json.loads(PACKAGE.read_text())["version"]
    assert version.split(".")[0] == "6", version


@pytest.mark.parametrize("auth_mode", ["post", "basic"])
def test_openid_client_code_flow_userinfo_refresh(op, auth_mode):
    # openid-client defaults to client_secret_post; idp enforces the registered method.
    client = op.factory.gen_client(
        auth_method="client_secret_post" if auth_mode == "post" else None
    )
    user = op.factory.gen_user()

    result = _flow(op, client, user, auth_mode)

    assert result["issuer"] == op.url
    assert result["callback_iss"] == op.url
    assert result["sub"] == user.user_id
    assert result["aud"] == client.client_id
    assert result["nonce_ok"] is True
    assert isinstance(result["auth_time"], int)
    assert result["token_type"].lower() == "bearer"
    assert result["has_refresh_token"] is True
    assert result["userinfo"]["sub"] == user.user_id
    assert result["userinfo"]["email"] == user.email
    assert result["userinfo"]["email_verified"] is True

    refreshed = result["refreshed"]
    assert refreshed["new_refresh_token"] is True
    assert refreshed["access_token_changed"] is True
    assert refreshed["sub"] == user.user_id
    assert refreshed["auth_time"] == result["auth_time"]
    assert result["userinfo_after_refresh"]["email"] == user.email
