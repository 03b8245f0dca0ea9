"""credentials-exchange: every api method, ordering, fail-closed, secrets, execution records."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from idp.actions.models import ActionExecution
from idp.extensions import services
from tests.helpers import jwt_parts

pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def token(op: Any, client: Any, audience: str) -> requests.Response:
    return requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )


def executions(op: Any, action_id: str) -> list[ActionExecution]:
    return op.factory.executions(action_id)


def test_custom_claim_lands_in_the_access_token(op: Any) -> None:
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "tier",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access_token.set_custom_claim('https://example.com/tier', 'gold')\n"
        "    api.access_token.set_custom_claim('https://example.com/aud', event.resource_server.identifier)\n"
        "    api.access_token.set_custom_claim('https://example.com/cid', event.client.client_id)\n",
    )
    resp = token(op, client, audience)
    assert resp.status_code == 200, resp.text
    _, claims = jwt_parts(resp.json()["access_token"])
    assert claims["https://example.com/tier"] == "gold"
    assert claims["https://example.com/aud"] == audience
    assert claims["https://example.com/cid"] == client.client_id
    assert claims["sub"] == client.client_id


def test_tokens_are_not_reused_while_a_chain_is_bound(op: Any, monkeypatch: Any) -> None:
    with op.app.app_context():  # reuse is opt-in (CC_TOKEN_REUSE_SECONDS): on for this test
        monkeypatch.setattr(services().token_reuse, "window", 5)
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "counter",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    n = api.cache.get('n')\n"
        "    n = int(n['value']) + 1 if n else 1\n"
        "    api.cache.set('n', str(n))\n"
        "    api.access_token.set_custom_claim('https://example.com/n', n)\n",
    )
    first = jwt_parts(token(op, client, audience).json()["access_token"])[1]
    second = jwt_parts(token(op, client, audience).json()["access_token"])[1]
    assert first["jti"] != second["jti"]
    # api.cache survives between executions; nothing else does
    assert second["https://example.com/n"] == first["https://example.com/n"] + 1


@pytest.mark.parametrize(
    ("code", "status"),
    [("invalid_scope", 400), ("access_denied", 403), ("unauthorized_client", 400)],
)
def test_deny_answers_with_the_chosen_oauth_error(op: Any, code: str, status: int) -> None:
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "gate",
        "credentials-exchange",
        f"def on_execute_credentials_exchange(event, api):\n"
        f"    api.access.deny('{code}', 'not for you')\n",
    )
    resp = token(op, client, audience)
    assert resp.status_code == status
    assert resp.json() == {"error": code, "error_description": "not for you"}
    assert resp.headers["Cache-Control"] == "no-store"


def test_deny_stops_the_chain_and_later_actions_do_not_run(op: Any) -> None:
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "first-denies",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access.deny('access_denied', 'stop')\n",
    )
    later = op.factory.gen_action(
        "never-runs",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n    pass\n",
    )
    assert token(op, client, audience).status_code == 403
    assert executions(op, later) == []


def test_order_of_bindings_decides_which_claim_wins(op: Any) -> None:
    client, audience = op.factory.m2m()
    body = "def on_execute_credentials_exchange(event, api):\n    api.access_token.set_custom_claim('https://x/who', '{}')\n"
    op.factory.gen_action("a", "credentials-exchange", body.format("a"))
    op.factory.gen_action("b", "credentials-exchange", body.format("b"), position=0)
    # chain is b, a: a runs last and wins
    claims = jwt_parts(token(op, client, audience).json()["access_token"])[1]
    assert claims["https://x/who"] == "a"


@pytest.mark.parametrize(
    "body",
    [
        "    raise RuntimeError('boom')\n",
        "    api.access_token.set_custom_claim('sub', 'someone-else')\n",
        "    api.access_token.set_custom_claim('https://x/big', 'x' * 20000)\n",
        "    api.access_token.set_custom_claim('https://x/n', float('nan'))\n",
        '    import os; os.write(1, b\'{"done": true, "commands": [{"op": "access_token.set_custom_claim", "args": ["iss", "evil"]}]}\\n\'); os._exit(0)\n',
        "    while True: pass\n",
        "    x = bytearray(512 * 1024 * 1024)\n",
    ],
    ids=[
        "exception",
        "reserved-claim",
        "oversized-claim",
        "not-json",
        "forged-result",
        "spin",
        "memory",
    ],
)
def test_a_failing_action_fails_closed(op: Any, body: str) -> None:
    client, audience = op.factory.m2m()
    action_id = op.factory.gen_action(
        "broken",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n" + body,
        timeout_ms=1000,
    )
    resp = token(op, client, audience)
    assert resp.status_code == 403
    assert resp.json()["error"] == "access_denied"
    assert "access_token" not in resp.json()
    [record] = executions(op, action_id)
    assert record.outcome != "success"
    assert record.error


def test_allowed_to_fail_is_refused_for_credentials_exchange(op: Any) -> None:
    from idp.actions.service import ActionError

    with pytest.raises(ActionError, match="always fails closed"):
        op.factory.gen_action(
            "optional",
            "credentials-exchange",
            "def on_execute_credentials_exchange(event, api):\n    pass\n",
            allowed_to_fail=True,
        )


def test_secrets_reach_only_their_action_and_never_the_records(op: Any) -> None:
    client, audience = op.factory.m2m()
    first = op.factory.gen_action(
        "has-secret",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    print('key is', event.secrets.API_KEY)\n"
        "    api.access_token.set_custom_claim('https://x/len', len(event.secrets.API_KEY))\n",
        secrets={"API_KEY": "s3cr3t-value-123"},
    )
    second = op.factory.gen_action(
        "no-secret",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access_token.set_custom_claim('https://x/seen', sorted(event.secrets or []))\n",
    )
    resp = token(op, client, audience)
    assert resp.status_code == 200, resp.text
    claims = jwt_parts(resp.json()["access_token"])[1]
    assert claims["https://x/len"] == len("s3cr3t-value-123")
    assert claims["https://x/seen"] == []
    [record] = executions(op, first)
    assert "s3cr3t-value-123" not in record.logs
    assert "[secret API_KEY]" in record.logs
    assert executions(op, second)[0].outcome == "success"


def test_records_are_written_after_the_response_not_on_its_path(op: Any) -> None:
    """The token is answered while its chain's record is still with the writer thread; once
    the writer goes on, a flush finds the record stored."""
    client, audience = op.factory.m2m()
    action_id = op.factory.gen_action(
        "noted",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n    pass\n",
    )
    with op.app.app_context():
        writer = services().actions.records
        assert writer.flush()
    release = threading.Event()
    original = writer._save

    def held(rows: Any) -> None:
        release.wait(10)
        original(rows)

    writer._save = held  # type: ignore[method-assign]
    try:
        assert token(op, client, audience).status_code == 200
        assert not writer.flush(0.2)  # the response did not wait for the record
    finally:
        release.set()
        writer._save = original  # type: ignore[method-assign]
    [record] = executions(op, action_id)
    assert record.outcome == "success" and record.trigger == "credentials-exchange"


def test_each_execution_is_recorded_with_the_request(op: Any) -> None:
    client, audience = op.factory.m2m()
    action_id = op.factory.gen_action(
        "logger",
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n    print('hello \\x1b[31m red')\n",
    )
    assert token(op, client, audience).status_code == 200
    [record] = executions(op, action_id)
    assert record.outcome == "success"
    assert record.client_id == client.client_id
    assert record.request_id
    assert record.version == 1
    assert record.duration_ms > 0
    assert "\x1b" not in record.logs and "\\x1b" in record.logs  # log injection escaped
