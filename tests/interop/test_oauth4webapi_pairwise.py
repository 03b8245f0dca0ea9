"""Pairwise subject identifiers (OIDC Core §8) with a strict third-party client: npm
``oauth4webapi`` 3.8.9, unmodified. ``oauth4webapi_pairwise.mjs`` logs in with a public client
registered pairwise, has the library validate the ID token and compare userinfo's ``sub`` with
it (§5.3.2), and, as the refusal, compare it with the user's local id, which must fail."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from idp.extensions import db, services
from idp.oauth import pairwise
from idp.oauth import service as oauth

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oauth4webapi_pairwise.mjs")
PACKAGE = ROOT / "node_modules" / "oauth4webapi" / "package.json"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm oauth4webapi is not installed (npm ci)"),
]


def test_oauth4webapi_validates_a_pairwise_sub_and_refuses_the_local_id(op: Any) -> None:
    assert NODE is not None
    client = op.factory.gen_client("spa")
    with op.app.app_context():
        row = oauth.get_client(db.session, client.client_id)
        pairwise.configure(services().config, row, "pairwise")
        db.session.commit()
    user = op.factory.gen_user()
    proc = subprocess.run(
        [NODE, str(SCRIPT), op.url, client.client_id, client.redirect_uri, user.email,
         user.password, user.user_id],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-2000:])
    assert result["subject_types_supported"] == ["public", "pairwise"]
    assert result["sub"] != user.user_id and result["userinfo"]["sub"] == result["sub"]
    assert result["userinfo"]["email"] == user.email
    assert result["refusal"] is not None, "the library accepted the local id as the sub"
    assert result["refusal"]["code"] == "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED", result
