"""The device flow (RFC 8628) with npm ``oauth4webapi`` 3.8.9, unmodified: discovery, the
device authorization request, polling through authorization_pending and slow_down, and the
tokens (the library validates the token response and the ID token's claims); a refusal
(access_denied) as the library reports it. ``oauth4webapi_device.mjs`` is the device; the
test is the person at ``/device``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, build_app, serving
from tests.device.helpers import Person, device_client

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oauth4webapi_device.mjs")
PACKAGE = ROOT / "node_modules" / "oauth4webapi" / "package.json"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="npm oauth4webapi is not installed"),
]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("device-interop")
    settings = {"DEVICE_FLOW_ENABLED": True, "DEVICE_POLL_INTERVAL": 2}  # 2: an immediate
    # second poll is within the interval whatever second boundary it crosses
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


def _device(dev: Any, client: Any, user: Any, decision: str, scope: str) -> dict[str, Any]:
    """Run the device; when it shows its code, the person answers ``decision``."""
    assert NODE is not None
    proc = subprocess.Popen(
        [NODE, str(SCRIPT), dev.url, client.client_id, scope],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        shown = json.loads(proc.stdout.readline() or "{}")
        assert shown.get("step") == "authorize", (shown, proc.stderr and proc.stderr.read())
        assert shown["verification_uri"] == dev.url + "/device"
        page = Person(dev.url).go(shown["user_code"], user, decision)
        assert page.status_code == 200, page.text[:500]
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, (out, err)
    return dict(json.loads(lines[-1]), stderr=err[-2000:])


def test_oauth4webapi_package_is_pinned():
    assert json.loads(PACKAGE.read_text())["version"] == "3.8.9"


def test_device_flow_with_oauth4webapi(dev):
    client, user = device_client(dev), dev.factory.gen_user()
    result = _device(dev, client, user, "allow", "openid offline_access")
    assert result["ok"] is True, result
    assert result["aud"] == client.client_id and result["sub"] == user.user_id
    assert result["refresh"] is True and result["token_type"].lower() == "bearer"
    assert result["seen"]["authorization_pending"] >= 1
    assert result["seen"]["slow_down"] == 1  # the second poll at once


def test_a_denied_device_with_oauth4webapi(dev):
    result = _device(dev, device_client(dev), dev.factory.gen_user(), "deny", "openid")
    assert result["ok"] is False and result["error"] == "access_denied", result
    assert result["status"] == 400
