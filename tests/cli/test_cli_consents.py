"""`clients create --third-party` and `consents list|revoke` (in-process through click)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from idp.cli import main
from idp.consent import service as consent


def _cli(runner, instance, *args):
    result = runner.invoke(main, ["--instance", str(instance), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if result.output.strip() else None


def test_third_party_client_and_consent_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("IDP_ARGON2_TIME_COST", "1")
    monkeypatch.delenv("IDP_DATABASE_URL", raising=False)
    runner = CliRunner()
    _cli(runner, tmp_path, "init")
    app = _cli(
        runner,
        tmp_path,
        "clients",
        "create",
        "--name",
        "partner",
        "--type",
        "regular_web",
        "--redirect-uri",
        "https://partner.test/cb",
        "--third-party",
    )
    assert app["first_party"] is False
    user = _cli(
        runner,
        tmp_path,
        "users",
        "create",
        "--email",
        "c@example.test",
        "--password",
        "long-enough-pw",
    )
    from idp import create_app
    from idp.extensions import db

    flask_app = create_app(instance_path=tmp_path)
    with flask_app.app_context():
        consent.record(db.session, user["user_id"], app["client_id"], ["openid", "email"])
        db.session.commit()
        db.session.close()
        db.engine.dispose()  # no pooled SQLite connection left to the garbage collector
    listed = _cli(runner, tmp_path, "consents", "list", "--user", "c@example.test")
    assert listed == [{"client_id": app["client_id"], "grants": ["openid", "email"]}]
    _cli(
        runner,
        tmp_path,
        "consents",
        "revoke",
        "--user",
        user["user_id"],
        "--client-id",
        app["client_id"],
    )
    assert _cli(runner, tmp_path, "consents", "list", "--user", user["user_id"]) == []
    missing = runner.invoke(
        main,
        [
            "--instance",
            str(tmp_path),
            "consents",
            "revoke",
            "--user",
            user["user_id"],
            "--client-id",
            app["client_id"],
        ],
    )
    assert missing.exit_code != 0 and "no consent" in missing.output
