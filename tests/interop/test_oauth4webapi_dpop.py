"""DPoP (RFC 9449) with a strict third-party client: npm ``oauth4webapi`` 3.8.9, unmodified.

``oauth4webapi_dpop.mjs`` runs code + PKCE for a public client with its ``DPoP()`` handle (ES256
key), userinfo with the bound token, a refresh and userinfo again, retrying on
``use_dpop_nonce`` as the library prescribes; then the refusals (the refresh token with another
key, the bound token as Bearer). Once against a server without nonces and once against one that
requires them (``DPOP_NONCE_REQUIRED``), where every first request needs the retry.

With ``par``, the same client pushes its authorization request (RFC 9126) with the ``DPoP``
handle (``pushedAuthorizationRequest``): the proof at the PAR endpoint binds the code to the
key (RFC 9449 §10.1, no ``dpop_jkt`` sent), the code is exchanged with that key, and a second
pushed request's code offered with another key is refused; with and without server nonces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, build_app, serving
from tests.helpers import jwt_parts

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oauth4webapi_dpop.mjs")
PACKAGE = ROOT / "node_modules" / "oauth4webapi" / "package.json"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm oauth4webapi is not installed (npm ci)"),
]


@pytest.fixture(scope="module")
def nonce_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, DPOP_NONCE_REQUIRED=True)) as server:
        yield server


def _flow(server: Any, *mode: str) -> dict[str, Any]:
    assert NODE is not None
    client = server.factory.gen_client("spa")
    user = server.factory.gen_user()
    proc = subprocess.run(
        [NODE, str(SCRIPT), server.url, client.client_id, client.redirect_uri, user.email,
         user.password, *mode],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-2000:])
    assert result["sub"] == user.user_id
    assert result["userinfo"]["email"] == user.email
    return dict(result)


def _check(result: dict[str, Any]) -> None:
    assert "ES256" in result["dpop_algs"]
    assert result["token_type"].lower() == "dpop"
    assert result["refreshed_token_type"].lower() == "dpop"
    for token in (result["access_token"], result["refreshed_access_token"]):
        assert jwt_parts(token)[1]["cnf"] == {"jkt": result["jkt"]}
    assert result["userinfo_after_refresh"]["sub"] == result["sub"]
    assert result["other_key_refresh"] == {"status": 400, "error": "invalid_grant", "scheme": None}
    assert result["bearer_userinfo"]["status"] == 401
    assert result["bearer_userinfo"]["error"] == "invalid_token"
    assert result["refreshed_again"].lower() == "dpop"


def test_oauth4webapi_package_is_pinned():
    assert json.loads(PACKAGE.read_text())["version"] == "3.8.9"


def test_code_pkce_dpop_refresh_userinfo(op):
    result = _flow(op)
    _check(result)
    assert result["nonce_retries"] == 0


def test_with_server_nonces(nonce_op):
    result = _flow(nonce_op)
    _check(result)
    # the code exchange learns the nonce (one retry); userinfo, on the same origin, reuses it
    assert result["nonce_retries"] >= 1


def _check_par(result: dict[str, Any]) -> None:
    assert result["mode"] == "par"
    assert result["token_type"].lower() == "dpop"
    assert jwt_parts(result["access_token"])[1]["cnf"] == {"jkt": result["jkt"]}
    assert result["other_key_code"] == {"status": 400, "error": "invalid_grant", "scheme": None}


def test_par_with_dpop(op):
    result = _flow(op, "par")
    _check_par(result)
    assert result["nonce_retries"] == 0


def test_par_with_dpop_and_server_nonces(nonce_op):
    result = _flow(nonce_op, "par")
    _check_par(result)
    # PAR learns the nonce (one retry); the other key's handle needs its own
    assert result["nonce_retries"] >= 1
