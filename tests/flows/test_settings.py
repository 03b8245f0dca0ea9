"""Sign-up can be disabled; argon2 parameters upgrade at login; the development outbox;
`idp logs`. Each test builds its own app (its own module: on PostgreSQL that resets the schema)."""

from __future__ import annotations

import json
import re

from argon2 import PasswordHasher
from click.testing import CliRunner

from idp import create_app
from idp.cli import main
from idp.extensions import db
from idp.identity.models import User
from tests.conftest import build_app
from tests.factories import Factory
from tests.helpers import auth_params, interaction_uid, login_form_action, pkce


def _cleanup(app):
    with app.app_context():
        db.engine.dispose()


def test_signup_can_be_disabled(tmp_path):
    app = build_app(tmp_path, 5000, SIGNUP_ENABLED=False)
    try:
        client = Factory(app).gen_client()
        http = app.test_client()
        login = http.get("/authorize", query_string=auth_params(client, pkce()[1]))
        shown = login.get_data(as_text=True)  # the login form, shown by /authorize itself
        uid = interaction_uid(shown)
        page = http.get(f"/interaction/{uid}/login").get_data(as_text=True)
        assert "Create an account" not in shown and "Create an account" not in page
        assert http.get(f"/interaction/{uid}/signup").status_code == 404
    finally:
        _cleanup(app)


def test_password_hash_is_upgraded_at_login_when_parameters_change(tmp_path):
    app = build_app(tmp_path, 5000)
    try:
        factory = Factory(app)
        client, user = factory.gen_client(), factory.gen_user()
        weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
        with app.app_context():
            row = db.session.get(User, user.user_id)
            row.password_hash = weak.hash(user.password)
            db.session.commit()
        http = app.test_client()
        page = http.get("/authorize", query_string=auth_params(client, pkce()[1]))
        action = login_form_action(page.get_data(as_text=True))
        assert action is not None  # the login form, shown by /authorize itself
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
        resp = http.post(
            action,
            data={"csrf_token": token.group(1), "email": user.email, "password": user.password},
        )
        assert resp.status_code == 303
        with app.app_context():
            stored = db.session.get(User, user.user_id).password_hash
        assert "m=1024" in stored and "t=1" in stored  # the configured (test) parameters
        assert "m=512" not in stored
    finally:
        _cleanup(app)


def test_development_outbox_keeps_mail_and_logs_the_link(tmp_path, caplog):
    app = build_app(tmp_path, 5000)  # no SMTP_HOST: development outbox
    try:
        from idp.extensions import services

        with app.app_context():
            services().mailer.send("x@example.test", "Verify", "link: http://h/verify-email?t=1")
        files = list((tmp_path / "outbox").glob("*.eml"))
        assert len(files) == 1 and b"Subject: Verify" in files[0].read_bytes()
        assert any("http://h/verify-email?t=1" in r.getMessage() for r in caplog.records)
    finally:
        _cleanup(app)


def test_idp_logs_lists_and_filters_events(tmp_path, monkeypatch):
    monkeypatch.delenv("IDP_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["--instance", str(tmp_path), "init"]).exit_code == 0
    app = create_app({"ARGON2_MEMORY_KIB": 1024, "ARGON2_TIME_COST": 1}, instance_path=tmp_path)
    from idp.audit import service as audit

    with app.app_context():
        origin = audit.Origin("203.0.113.9", "test-agent")
        audit.record(
            db.session, "login.failure", "Wrong email or password", origin, user_id="usr_a"
        )
        audit.record(db.session, "login.success", "Successful login", origin, user_id="usr_b")
        db.session.commit()
        db.engine.dispose()
    out = runner.invoke(
        main, ["--instance", str(tmp_path), "--json", "logs", "--type", "login.failure"]
    )
    assert out.exit_code == 0, out.output
    events = [json.loads(line) for line in out.output.splitlines()]
    assert [e["type"] for e in events] == ["login.failure"]
    assert events[0]["ip"] == "203.0.113.9" and events[0]["user_agent"] == "test-agent"
    text = runner.invoke(main, ["--instance", str(tmp_path), "logs"]).output
    assert "login.success" in text and "login.failure" in text
