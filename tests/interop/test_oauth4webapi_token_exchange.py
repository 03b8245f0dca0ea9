"""RFC 8693 token exchange driven by a strict client no one here wrote: npm ``oauth4webapi``
(``genericTokenEndpointRequest`` with the token-exchange grant), unmodified.

``oauth4webapi_token_exchange.mjs`` discovers idp, exchanges a user's access token (from a
real code flow) for a token to another API, as a delegation with the exchanging service's own
client-credentials token as the actor, and reads two refusals as the library's
``ResponseBodyError``. Nothing of ours sits between the library and the server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.extensions import db
from idp.oauth import service as oauth
from tests.helpers import jwt_parts, login_and_redeem

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oauth4webapi_token_exchange.mjs")
PACKAGE = ROOT / "node_modules" / "oauth4webapi" / "package.json"
NODE = shutil.which("node")
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm oauth4webapi is not installed (npm ci)"),
]

ACTION = (
    "def on_execute_custom_token_exchange(event, api):\n"
    "    claims = event.transaction.subject_token_claims\n"
    "    if not claims:\n"
    "        api.access.reject_invalid_subject_token('not an access token of idp')\n"
    "        return\n"
    "    api.authentication.set_user_by_id(claims['sub'])\n"
)


def test_oauth4webapi_exchanges_a_token_with_delegation(op: Any) -> None:
    assert NODE is not None
    op.factory.clear_actions()
    op.factory.gen_action("exchange", "custom-token-exchange", ACTION)
    orders, billing = op.factory.gen_api(), op.factory.gen_api()
    # The orders service: a machine client allowed the exchange and the billing API.
    service, _ = op.factory.m2m()
    op.factory.gen_client_grant(service.client_id, billing, ["read:things"])
    with op.app.app_context():
        oauth.update_client(db.session, service.client_id,
                            grant_types=["client_credentials", GRANT])  # fmt: skip
        db.session.commit()
    actor = requests.post(f"{op.url}/oauth/token", auth=service.basic, timeout=30, data={
        "grant_type": "client_credentials", "audience": billing}).json()["access_token"]  # fmt: skip
    user = op.factory.gen_user()
    first = login_and_redeem(op.url, op.factory.gen_client(), user,
                             scope="openid read:things", audience=orders)  # fmt: skip

    proc = subprocess.run(
        [NODE, str(SCRIPT), op.url, service.client_id, str(service.client_secret),
         first["access_token"], billing, "read:things", actor],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-2000:])

    assert result["advertised"] is True
    assert result["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert result["token_type"] == "bearer" and result["scope"] == "read:things"
    assert result["refresh_token"] is None and result["expires_in"] > 0
    claims = jwt_parts(result["access_token"])[1]
    assert claims["sub"] == user.user_id and claims["aud"] == billing
    assert claims["act"] == {"sub": service.client_id}
    assert result["rejected"] == {"error": "invalid_request", "status": 400,
                                  "description": "not an access token of idp"}  # fmt: skip
    assert result["unsupported"]["error"] == "invalid_request"
    assert result["unsupported"]["status"] == 400
