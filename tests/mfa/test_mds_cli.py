"""``idp mfa mds import|status`` (in-process through click) on an instance made by ``idp init``:
a tampered blob is refused with its reason and changes nothing, a good one is imported and
shown, an expired ``nextUpdate`` is warned about at import and by ``status``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idp.cli import main
from tests.mfa.mds_blob import MdsPki, entry, issue

AAGUID = "11111111-2222-4333-8444-555555555555"


def _cli(runner: CliRunner, instance: Path, *args: str, ok: bool = True) -> Any:
    result = runner.invoke(main, ["--instance", str(instance), "--json", *args])
    assert (result.exit_code == 0) is ok, result.output
    return result


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IDP_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("IDP_ARGON2_TIME_COST", "1")
    # SQLite in the instance folder, as the other in-process CLI tests: each command builds an
    # app whose pool the command leaves to the garbage collector (the service-level tests in
    # test_attestation.py cover PostgreSQL)
    monkeypatch.delenv("IDP_DATABASE_URL", raising=False)
    _cli(CliRunner(), tmp_path, "init")
    return tmp_path


def test_import_and_status(instance: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    runner, files = CliRunner(), tmp_path_factory.mktemp("mds")
    pki = MdsPki()
    (files / "root.pem").write_bytes(pki.root.pem)
    root = str(files / "root.pem")
    entries = [entry(AAGUID, [issue("Maker")], "Test Key")]

    status = json.loads(_cli(runner, instance, "mfa", "mds", "status").stdout)
    assert status["imported"] is False and status["policy"] == "none"

    tampered = pki.blob(entries, 7, signer=issue("intruder"))
    (files / "bad.jwt").write_text(tampered)
    refused = _cli(runner, instance, "mfa", "mds", "import", str(files / "bad.jwt"),
                   "--root", root, ok=False)  # fmt: skip
    assert "blob refused" in refused.output and "signature" in refused.output
    # the bundled FIDO root (the default) does not accept the tests' own chain
    (files / "good.jwt").write_text(pki.blob(entries, 7))
    refused = _cli(runner, instance, "mfa", "mds", "import", str(files / "good.jwt"), ok=False)
    assert "does not lead to the configured MDS root" in refused.output
    assert json.loads(_cli(runner, instance, "mfa", "mds", "status").stdout)["imported"] is False

    done = json.loads(_cli(runner, instance, "mfa", "mds", "import", str(files / "good.jwt"),
                           "--root", root).stdout)  # fmt: skip
    assert done["no"] == 7 and done["entries"] == 1 and done["warnings"] == []
    status = json.loads(_cli(runner, instance, "mfa", "mds", "status").stdout)
    assert status["imported"] is True and status["no"] == 7 and status["stale"] is False
    assert "mds.test" in status["signer"]

    older = pki.blob(entries, 6)
    (files / "older.jwt").write_text(older)
    refused = _cli(runner, instance, "mfa", "mds", "import", str(files / "older.jwt"),
                   "--root", root, ok=False)  # fmt: skip
    assert "older than the imported one (7)" in refused.output

    past = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    (files / "stale.jwt").write_text(pki.blob(entries, 8, next_update=past))
    imported = _cli(runner, instance, "mfa", "mds", "import", str(files / "stale.jwt"),
                    "--root", root)  # fmt: skip
    assert f"warning: the blob's nextUpdate ({past}) has passed" in imported.stderr
    status = _cli(runner, instance, "mfa", "mds", "status")
    data = json.loads(status.stdout)
    assert data["no"] == 8 and data["stale"] is True and past in data["warnings"][0]
    assert "warning:" in status.stderr


def test_attestation_policy_is_a_tenant_setting(instance: Path) -> None:
    runner = CliRunner()
    shown = json.loads(_cli(runner, instance, "mfa", "attestation").stdout)
    assert shown == {"policy": "none", "allowlist": []}
    set_ = _cli(runner, instance, "mfa", "attestation", "direct", "--allow", AAGUID.upper())
    assert json.loads(set_.stdout) == {"policy": "direct", "allowlist": [AAGUID]}
    # stored: a new process (a fresh app) reads it back; the status names the consequence
    status = _cli(runner, instance, "mfa", "mds", "status")
    assert json.loads(status.stdout)["policy"] == "direct"
    assert "refuses every security key" in status.stderr
    cleared = _cli(runner, instance, "mfa", "attestation", "--allow", "")
    assert json.loads(cleared.stdout) == {"policy": "direct", "allowlist": []}
    bad = _cli(runner, instance, "mfa", "attestation", "--allow", "yubikey", ok=False)
    assert "not a list of AAGUIDs" in bad.output
