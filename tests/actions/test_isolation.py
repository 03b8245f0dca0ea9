"""Start-up decides the isolation level; without one, actions are refused (fail closed)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from idp.actions.runner import pool
from idp.actions.runner.sandbox import Limits, SandboxError

JOB = {
    "entry": "on_execute_credentials_exchange",
    "code": "def on_execute_credentials_exchange(event, api):\n"
    "    api.access_token.set_custom_claim('https://x/y', 1)\n",
    "event": {},
    "secrets": {},
    "api": ["access_token.set_custom_claim"],
}


def test_ready_reports_the_sandbox(op: Any) -> None:
    body = requests.get(f"{op.url}/health/ready", timeout=30).json()
    assert body["actions"]["isolation"] == "bubblewrap"


def test_without_bubblewrap_actions_are_refused_and_the_reason_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pool.shutil, "which", lambda name: None)
    runner = pool.Runner()
    with caplog.at_level(logging.ERROR):
        runner.ensure_probed()
    assert runner.level is None
    assert "bubblewrap" in runner.reason
    assert any("Actions are disabled" in r.getMessage() for r in caplog.records)
    with pytest.raises(SandboxError, match="disabled"):
        runner.run(JOB, Limits(timeout=2))


def test_insecure_dev_mode_runs_and_says_so_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pool.shutil, "which", lambda name: None)
    runner = pool.Runner(insecure_dev=True)
    try:
        with caplog.at_level(logging.WARNING):
            runner.ensure_probed()
        assert runner.level == "insecure-dev"
        assert any("WITHOUT ISOLATION" in r.getMessage() for r in caplog.records)
        outcome = runner.run(JOB, Limits(timeout=5))
        assert outcome.error is None
        assert outcome.commands[0]["op"] == "access_token.set_custom_claim"
    finally:
        runner.close()


def test_a_chain_fails_closed_when_the_sandbox_is_unavailable(
    op: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    op.factory.clear_actions()
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "needs-sandbox",
        "credentials-exchange",
        JOB["code"],
    )
    with op.app.app_context():
        from idp.extensions import services

        runner = services().actions.runner
    monkeypatch.setattr(runner, "level", None)
    monkeypatch.setattr(runner, "reason", "bubblewrap is gone")
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )
    assert resp.status_code == 403
    assert resp.json()["error"] == "access_denied"
