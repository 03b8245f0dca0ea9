"""Dynamic client registration (RFC 7591) with a strict third-party client: npm
``openid-client`` v6's ``dynamicClientRegistration`` (which processes the answer with
``oauth4webapi``), unmodified, then a full login with the client it registered and RFC 7592's
read and delete on the ``registration_client_uri``; and a refusal as the library reports it.
``openid_client_registration.mjs`` is the relying party."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conformance._registration_helpers import initial_token
from tests.conformance._registration_helpers import reg as reg  # the fixture

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("openid_client_registration.mjs")
PACKAGE = ROOT / "node_modules" / "openid-client" / "package.json"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm openid-client is not installed"),
]


def _run(server: Any, *args: str) -> dict[str, Any]:
    assert NODE is not None
    proc = subprocess.run([NODE, str(SCRIPT), server.url, *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    return dict(json.loads(lines[-1]), stderr=proc.stderr[-2000:])


def test_the_registration_goes_through_the_pinned_oauth4webapi():
    """openid-client's registration is oauth4webapi's request and response processing: the
    project's pinned 3.8.9, not a copy of its own."""
    assert not (PACKAGE.parent / "node_modules" / "oauth4webapi").exists()
    pinned = ROOT / "node_modules" / "oauth4webapi" / "package.json"
    assert json.loads(pinned.read_text())["version"] == "3.8.9"


def test_openid_client_registers_logs_in_reads_and_deletes(reg):
    user = reg.factory.gen_user()
    out = _run(reg, initial_token(reg, max_uses=1), user.email, user.password)
    assert out["ok"] is True, out
    assert out["has_secret"] and out["contacts"] == ["ops@rp.example"]
    assert out["aud"] == out["client_id"] and out["nonce_ok"]
    assert out["userinfo_sub"] == out["sub"] == user.user_id
    assert out["read_status"] == 200 and out["read_client_id"] == out["client_id"]
    assert out["delete_status"] == 204 and out["after_delete_status"] == 401


def test_openid_client_reports_a_refused_registration(reg):
    out = _run(reg, initial_token(reg), "x@example.com", "unused", "refusal")
    assert out["ok"] is False and out["error"] == "invalid_redirect_uri", out
    assert out["status"] == 400 and out["description"].startswith("redirect_uris:")


def test_openid_client_without_a_valid_initial_token(reg):
    out = _run(reg, "not-a-token", "x@example.com", "unused", "refusal")
    assert out["ok"] is False and out["name"] == "WWWAuthenticateChallengeError", out
    assert out["status"] == 401 and out["error"] == "invalid_token"
