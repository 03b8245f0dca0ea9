"""Every plugin's sample events (plugins/actions/<slug>/tests/*.json) through the real sandbox.

A case names the settings (as ``--config`` would give them: validated, typed and defaulted by
the manifest), the secrets, an RFC 7396 merge patch over the trigger's sample event, and what
must come out: the commands, the error, a log line, and the requests the receiver gets. The
string ``{receiver}`` in a setting is the loopback receiver's base URL; the allow-list is the
one install derives from the manifest's egress rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from idp.actions import marketplace, triggers
from idp.actions.engine import Link, run_test
from idp.extensions import services
from tests.marketplace.conftest import Receiver

CASES = [(p.slug, case) for p in marketplace.catalog() for case in p.cases]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 §2: objects merge member by member, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _fill(value: Any, receiver: Receiver) -> Any:
    return value.replace("{receiver}", receiver.url) if isinstance(value, str) else value


def run_case(op: Any, receiver: Receiver, slug: str, case: dict[str, Any]) -> dict[str, Any]:
    plugin = marketplace.get(slug)
    given = {k: _fill(v, receiver) for k, v in case.get("config", {}).items()}
    configuration = marketplace.configure(plugin, given)
    link = Link(
        action_id=f"marketplace-{slug}",
        name=slug,
        version=0,
        code=plugin.code,
        deps=None,
        allowed_hosts=tuple(marketplace.allowed_hosts(plugin, configuration)),
        configuration=configuration,
        timeout_ms=plugin.timeout_ms or 5000,
        allowed_to_fail=False,
        secrets=case.get("secrets", {}),
    )
    event = merge_patch(triggers.get(plugin.trigger).sample, case.get("event_patch", {}))
    with op.app.app_context():
        return run_test(services().actions, plugin.trigger, link, event)


@pytest.mark.parametrize(
    ("slug", "path"), CASES, ids=[f"{slug}/{path.stem}" for slug, path in CASES]
)
def test_sample_event(op: Any, receiver: Receiver, slug: str, path: Path) -> None:
    case = json.loads(path.read_text())
    expect = case["expect"]
    result = run_case(op, receiver, slug, case)
    if "error" in expect:
        assert result["error"] and expect["error"] in result["error"], result
    else:
        assert result["error"] is None, result
    assert result["commands"] == expect["commands"], case["description"]
    if "logs" in expect:
        assert expect["logs"] in result["logs"], result["logs"]
    if "requests" in expect:
        got = receiver.requests
        assert len(got) == len(expect["requests"]), [(r.path, r.body) for r in got]
        for want, request in zip(expect["requests"], got, strict=True):
            assert request.method == want["method"]
            assert request.path == want["path"]
            assert request.headers.get("authorization") == want["authorization"]
            if "json" in want:
                assert request.json == want["json"]


def test_every_plugin_has_cases_and_a_readme() -> None:
    plugins = marketplace.catalog()
    assert {p.slug for p in plugins} >= {
        "user-claims",
        "mfa-by-geography",
        "login-webhook",
        "new-user-row",
    }
    for plugin in plugins:
        assert plugin.cases, f"{plugin.slug} has no tests/*.json"
        assert (plugin.path / "README.md").is_file(), plugin.slug
