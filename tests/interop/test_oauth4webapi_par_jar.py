"""Interop with a strict third-party client: npm ``oauth4webapi`` 3.8.9, unmodified, doing PAR
(RFC 9126) with a signed request object (RFC 9101) and ``private_key_jwt`` (RFC 7523) at the
PAR and token endpoints; the library validates the authorization response (RFC 9207 ``iss``)
and the ID token. And its view of two refusals: a reused ``request_uri`` and a key idp does
not know."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conformance._jwt_client_helpers import jwks_of, register, rsa_key

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oauth4webapi_par_jar.mjs")
PACKAGE = ROOT / "node_modules" / "oauth4webapi" / "package.json"
NODE = shutil.which("node")
CB = "https://rp.test/cb"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm oauth4webapi is not installed"),
]


def _run(op: Any, client_id: str, key: Any, user: Any, mode: str) -> dict[str, Any]:
    assert NODE is not None
    proc = subprocess.run(
        [
            NODE,
            str(SCRIPT),
            op.url,
            client_id,
            json.dumps(key.as_dict(private=True)),
            CB,
            user.email,
            user.password,
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr)
    return dict(json.loads(lines[-1]))


def test_oauth4webapi_version() -> None:
    assert json.loads(PACKAGE.read_text())["version"] == "3.8.9"


def test_par_jar_private_key_jwt_end_to_end(op: Any) -> None:
    key = rsa_key()
    client_id, _ = register(op, app_type="regular_web", method="private_key_jwt",
                            jwks=jwks_of(key), require_par=True)  # fmt: skip
    user = op.factory.gen_user()
    result = _run(op, client_id, key, user, "reuse")
    assert result["ok"], result
    assert result["par_endpoint"] == f"{op.url}/oauth/par" and result["expires_in"] == 60
    assert result["sub"] == user.user_id and result["aud"] == client_id and result["nonce_ok"]
    assert result["reuse_status"] == 400 and result["reuse_page_says_used"] is True


def test_par_with_an_unknown_key_is_refused(op: Any) -> None:
    client_id, _ = register(op, app_type="regular_web", method="private_key_jwt",
                            jwks=jwks_of(rsa_key()))  # fmt: skip
    result = _run(op, client_id, rsa_key(), op.factory.gen_user(), "flow")
    assert result["ok"] is False and result["error"] == "invalid_client", result
    assert result["status"] == 401
