"""Tokens and secrets never reach the logs, even with every logger at DEBUG (SECURITY.md §3.5:
Authlib logs issued tokens at DEBUG)."""

from __future__ import annotations

import json
import logging

import requests

from idp.ops.jsonlog import JsonFormatter
from tests.helpers import login_and_redeem


def test_no_token_or_secret_in_debug_logs(op, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("authlib").setLevel(logging.DEBUG)  # what a careless operator might do
    with op.app.app_context():
        from idp import _configure_logging

        _configure_logging()  # idp's own setup must win again
    client, user = op.factory.gen_client(), op.factory.gen_user()
    tokens = login_and_redeem(op.url, client, user, scope="openid offline_access")
    m2m, audience = op.factory.m2m()
    machine = requests.post(
        f"{op.url}/oauth/token",
        auth=m2m.basic,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert machine.status_code == 200
    secrets = [
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        machine.json()["access_token"],
        client.client_secret,
        m2m.client_secret,
        user.password,
    ]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "nothing was captured: the test would prove nothing"
    for secret in secrets:
        assert secret not in text
    # LOG_FORMAT=json: the same records as JSON lines (exceptions' tracebacks included)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert all(
        json.loads(line)["message"] == r.getMessage()
        for line, r in zip(lines, caplog.records, strict=True)
    )
    for secret in secrets:
        assert secret not in "\n".join(lines)
