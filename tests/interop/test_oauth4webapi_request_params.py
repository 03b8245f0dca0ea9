"""claims, acr, max_age=0 and response_mode=form_post with a strict third-party client: npm
``oauth4webapi`` 3.8.9, unmodified (``oauth4webapi_request_params.mjs``).

The library reads the form_post page's fields as its callback parameters (validateAuthResponse
checks ``iss`` and ``state``), checks the ID token with ``maxAge: 0`` (``auth_time`` present
and fresh) and the nonce, and reads userinfo. Then max_age=0 with a session shows the login
form again, and an essential acr idp cannot meet comes back as ``access_denied`` by form_post.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from idp.extensions import db
from idp.identity import profile
from idp.identity.models import User
from idp.oauth.acr import SINGLE_FACTOR_ACR

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oauth4webapi_request_params.mjs")
PACKAGE = ROOT / "node_modules" / "oauth4webapi" / "package.json"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm oauth4webapi is not installed (npm ci)"),
]


def _run(op: Any) -> tuple[Any, Any, dict[str, Any]]:
    assert NODE is not None
    client, user = op.factory.gen_client(), op.factory.gen_user()
    with op.app.app_context():
        profile.update_profile(db.session.get(User, user.user_id), {"name": "Grace Hopper"})
        db.session.commit()
    args = [op.url, client.client_id, client.client_secret, client.redirect_uri, user.email,
            user.password]  # fmt: skip
    proc = subprocess.run(
        [NODE, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-2000:])
    return client, user, result


def test_oauth4webapi_claims_max_age_form_post(op):
    client, user, result = _run(op)
    meta = result["metadata"]
    assert meta["claims_parameter_supported"] is True
    assert "form_post" in meta["response_modes_supported"]
    assert SINGLE_FACTOR_ACR in meta["acr_values_supported"]
    # form_post: code, state and iss as fields, no inline script, form-action the redirect URI
    assert result["form_post"]["fields"] == ["code", "iss", "state"]
    assert result["form_post"]["inline_script"] is False
    assert result["form_post"]["csp"].endswith(f"form-action {client.redirect_uri}")
    assert result["logins_first"] == 1
    # claims: email in the ID token (asked there), name at userinfo only (asked there)
    id_token = result["id_token"]
    assert id_token["sub"] == user.user_id and id_token["email"] == user.email
    assert id_token["acr"] == SINGLE_FACTOR_ACR and isinstance(id_token["auth_time"], int)
    assert id_token["name"] is None
    assert result["userinfo"] == {"sub": user.user_id, "name": "Grace Hopper"}
    # max_age=0 with a session: the login form again, then a code
    assert result["logins_with_session_and_max_age_0"] == 1 and result["second_code"] is True
    # the refusal, before any login
    assert result["refusal"] == "access_denied" and result["refusal_logins"] == 0
