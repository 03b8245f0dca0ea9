"""The rest of each trigger's api, through the test runner against each trigger's sample event:
api.cache in every trigger, challenge_with/enroll_with, can_redirect, and secrets that an action
tries to leak through its output, its error and its commands."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from idp.actions import triggers
from idp.actions.engine import Link, run_test
from idp.actions.models import ActionExecution
from idp.extensions import db, services


def run(op: Any, trigger: str, code: str, secrets: dict[str, str] | None = None) -> Any:
    with op.app.app_context():
        link = Link(
            action_id="act_methods",
            name="methods",
            version=0,
            code=code,
            deps=None,
            allowed_hosts=(),
            configuration={},
            timeout_ms=5000,
            allowed_to_fail=False,
            secrets=secrets or {},
        )
        return run_test(services().actions, trigger, link, None)


@pytest.mark.parametrize("trigger", list(triggers.TRIGGERS))
def test_cache_works_in_every_trigger(op: Any, trigger: str) -> None:
    entry = triggers.get(trigger).entry
    code = (
        f"def {entry}(event, api):\n"
        "    api.cache.set('k', 'v1', {'ttl': 60000})\n"
        "    print('got', api.cache.get('k')['value'])\n"
        "    api.cache.delete('k')\n"
        "    print('after delete', api.cache.get('k'))\n"
    )
    result = run(op, trigger, code)
    assert result["error"] is None, result
    assert "got v1" in result["logs"] and "after delete None" in result["logs"]


def test_cache_refuses_what_is_not_a_string(op: Any) -> None:
    code = (
        "def on_execute_post_login(event, api):\n"
        "    try:\n"
        "        api.cache.set('k', {'not': 'a string'})\n"
        "    except ValueError as exc:\n"
        "        print('refused:', exc)\n"
    )
    assert "refused: cache values are strings" in run(op, "post-login", code)["logs"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("api.authentication.challenge_with({'type': 'otp'})", {"challenge_with": ["otp"]}),
        (
            "api.authentication.enroll_with([{'type': 'webauthn-platform'}, 'otp'])",
            {"enroll_with": ["webauthn-platform", "otp"]},
        ),
        (
            "api.multifactor.enable('any', {'allow_remember_browser': True})",
            {"allow_remember_browser": True},
        ),
    ],
)
def test_mfa_commands_reach_the_effects(op: Any, call: str, expected: dict[str, Any]) -> None:
    result = run(op, "post-login", f"def on_execute_post_login(event, api):\n    {call}\n")
    assert result["error"] is None, result
    for key, value in expected.items():
        assert result["effects"]["mfa"][key] == value


def test_unknown_factor_is_an_invalid_command(op: Any) -> None:
    result = run(
        op,
        "post-login",
        "def on_execute_post_login(event, api):\n    api.authentication.challenge_with('carrier-pigeon')\n",
    )
    assert result["error"] and "unknown factor" in result["error"]


def test_can_redirect_is_true_in_an_interactive_login(op: Any) -> None:
    result = run(
        op,
        "post-login",
        "def on_execute_post_login(event, api):\n    print('can', api.redirect.can_redirect())\n",
    )
    assert "can True" in result["logs"]


def test_methods_of_other_triggers_are_absent(op: Any) -> None:
    result = run(
        op,
        "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n    api.user.set_app_metadata('a', 1)\n",
    )
    assert result["error"] and "AttributeError" in result["error"]


def test_secrets_never_reach_records_even_when_an_action_leaks_them(op: Any) -> None:
    secret = "sup3r-s3cret-v4lue"
    result = run(
        op,
        "post-login",
        "def on_execute_post_login(event, api):\n"
        "    print('leak', event.secrets.KEY)\n"
        "    api.id_token.set_custom_claim('https://x/leak', event.secrets.KEY)\n"
        "    raise RuntimeError('leaking ' + event.secrets.KEY)\n",
        secrets={"KEY": secret},
    )
    assert result["error"]
    with op.app.app_context():
        record = db.session.scalar(
            select(ActionExecution).where(ActionExecution.id == result["execution_id"])
        )
        assert record is not None
        stored = f"{record.logs} {record.error} {record.commands}"
    assert secret not in stored
    assert secret not in str(result)
    assert "[secret KEY]" in record.logs
