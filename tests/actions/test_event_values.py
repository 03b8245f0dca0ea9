"""A value taken from ``event`` is the value it looks like: a read-only dict or list that every
api method takes as the JSON it is; a value that is not JSON is an error naming the claim or key,
raised in the action (never its ``str()`` in a token).

Actions run in the real sandbox, through the test runner and through a live login."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from idp.actions import triggers
from idp.actions.engine import Link, run_test
from idp.extensions import services
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import jwt_parts, login_and_redeem

SAMPLE_USER = triggers.get("post-login").sample["user"]


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    """A loopback HTTP server that answers each POST with the JSON body it received."""

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = json.dumps({"type": self.headers.get("Content-Type"), "body": body.decode()})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """This module's server may call the loopback echo server through api.http."""
    tmp = tmp_path_factory.mktemp("instance")
    builder = lambda port: build_app(tmp, port, ACTIONS_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32")  # noqa: E731
    with serving(builder) as server:
        yield server


def run(op: Any, body: str, hosts: tuple[str, ...] = ()) -> dict[str, Any]:
    """``body`` as a post-login handler, through the test runner against the sample event."""
    code = "import json\n\ndef on_execute_post_login(event, api):\n" + body
    link = Link(
        action_id="act_values",
        name="values",
        version=0,
        code=code,
        deps=None,
        allowed_hosts=hosts,
        configuration={},
        timeout_ms=5000,
        allowed_to_fail=False,
        secrets={},
    )
    with op.app.app_context():
        return run_test(services().actions, "post-login", link, None)


def claims(result: dict[str, Any]) -> dict[str, Any]:
    assert result["error"] is None, result
    found: dict[str, Any] = result["effects"]["id_token_claims"]
    return found


def test_identities_become_a_json_array_of_objects(op: Any) -> None:
    result = run(op, "    api.id_token.set_custom_claim('userIdentities', event.user.identities)\n")
    identities = SAMPLE_USER["identities"]
    assert isinstance(identities[0], dict)
    assert claims(result) == {"userIdentities": identities}
    assert result["commands"] == [
        {"op": "id_token.set_custom_claim", "args": ["userIdentities", identities], "kwargs": {}}
    ]


def test_identities_reach_the_id_token_of_a_real_login(op: Any) -> None:
    op.factory.clear_actions()
    client, user = op.factory.gen_client(), op.factory.gen_user()
    op.factory.gen_action(
        "identities",
        "post-login",
        "def on_execute_post_login(event, api):\n"
        "    api.id_token.set_custom_claim('userIdentities', event.user.identities)\n"
        "    api.id_token.set_custom_claim('https://x/user', event.user)\n",
    )
    try:
        tokens = login_and_redeem(op.url, client, user)
    finally:
        op.factory.clear_actions()
    id_claims = jwt_parts(tokens["id_token"])[1]
    assert id_claims["userIdentities"] == [
        {
            "provider": "database",
            "connection": "database",
            "user_id": user.user_id,
            "isSocial": False,
        }
    ]
    assert id_claims["https://x/user"]["email"] == user.email
    assert id_claims["https://x/user"]["identities"] == id_claims["userIdentities"]


def test_event_objects_work_as_dicts_inside_the_action(op: Any) -> None:
    found = claims(
        run(
            op,
            "    user = event.user\n"
            "    report = {\n"
            "        'dict': dict(user), 'splat': {**user}, 'dumps': json.dumps(user),\n"
            "        'items': [[k, v] for k, v in user.items()], 'keys': list(user.keys()),\n"
            "        'values': list(user.values()), 'iterated': [k for k in user],\n"
            "        'len': len(user), 'equal': user == json.loads(json.dumps(user)),\n"
            "        'in': ['email' in user, 'nope' in user], 'email': user.email,\n"
            "        'item': user['email'], 'get': user.get('nope', 'fallback'),\n"
            "        'missing': [user.nope, event.nothing, event.user.app_metadata.nope],\n"
            "        'list_equal': user.identities == json.loads(json.dumps(user.identities)),\n"
            "        'nested': user.identities[0].provider, 'deep': event.to_dict()['user'],\n"
            "        'types': [isinstance(user, dict), isinstance(user.identities, list)],\n"
            "    }\n"
            "    api.id_token.set_custom_claim('report', report)\n",
        )
    )["report"]
    keys = list(SAMPLE_USER)
    assert found["dict"] == found["splat"] == found["deep"] == SAMPLE_USER
    assert json.loads(found["dumps"]) == SAMPLE_USER
    assert found["items"] == [[k, SAMPLE_USER[k]] for k in keys]
    assert found["keys"] == found["iterated"] == keys
    assert found["values"] == list(SAMPLE_USER.values())
    assert found["len"] == len(SAMPLE_USER)
    assert found["equal"] is True and found["list_equal"] is True
    assert found["in"] == [True, False]
    assert found["email"] == found["item"] == SAMPLE_USER["email"]
    assert found["get"] == "fallback"
    assert found["missing"] == [None, None, None]
    assert found["nested"] == SAMPLE_USER["identities"][0]["provider"]
    assert found["types"] == [True, True]


WRITES = {
    "attribute": "event.user = {}",
    "nested attribute": "event.user.email = 'x@example.com'",
    "item": "event.user['email'] = 'x@example.com'",
    "delete": "del event.user['email']",
    "update": "event.user.update(email='x@example.com')",
    "setdefault": "event.user.setdefault('new', 1)",
    "pop": "event.user.identities[0].pop('provider')",
    "merge": "m = event.user.app_metadata; m |= {'a': 1}",
    "append": "event.user.identities.append({})",
    "list item": "event.user.identities[0] = {}",
    "extend": "l = event.user.identities; l += [{}]",
    "sort": "event.authentication.methods.sort()",
}


def test_writes_to_event_still_fail(op: Any) -> None:
    tries = "".join(
        f"    try:\n        {statement}\n        refused[{name!r}] = False\n"
        f"    except (TypeError, AttributeError) as exc:\n"
        f"        refused[{name!r}] = str(exc)\n"
        for name, statement in WRITES.items()
    )
    found = claims(
        run(
            op,
            "    before = json.dumps(event)\n    refused = {}\n"
            + tries
            + "    copy = dict(event.user)\n    copy['email'] = 'changed'\n"
            "    api.id_token.set_custom_claim('refused', refused)\n"
            "    api.id_token.set_custom_claim('unchanged', json.dumps(event) == before)\n"
            "    api.id_token.set_custom_claim('copy', [copy['email'], event.user.email])\n",
        )
    )
    assert found["refused"] == dict.fromkeys(
        WRITES, "event is read-only: change things through api"
    )
    assert found["unchanged"] is True
    assert found["copy"] == ["changed", SAMPLE_USER["email"]]


def test_every_api_method_takes_event_values_as_json(op: Any, echo: str) -> None:
    result = run(
        op,
        "    api.access_token.set_custom_claim('https://x/methods', event.authentication.methods)\n"
        "    api.user.set_app_metadata('identities', event.user.identities)\n"
        "    api.user.set_user_metadata('user', event.user)\n"
        "    api.cache.set('email', event.user.email)\n"
        "    print('cached', api.cache.get('email')['value'])\n"
        f"    answer = api.http.post('http://{echo}/', json=event.user, timeout=3)\n"
        "    print('posted', answer.json.type, json.loads(answer.json.body) == event.user)\n"
        "    token = api.redirect.encode_token({'secret': 'k' * 32, 'payload': event.user})\n"
        "    api.redirect.send_user_to('https://example.com/x', {'query': {'t': token, 'e': event.user.email}})\n",
        hosts=(echo,),
    )
    assert result["error"] is None, result
    effects = result["effects"]
    sample = triggers.get("post-login").sample
    assert effects["access_token_claims"] == {
        "https://x/methods": sample["authentication"]["methods"]
    }
    assert effects["app_metadata"] == {"identities": SAMPLE_USER["identities"]}
    assert effects["user_metadata"] == {"user": SAMPLE_USER}
    assert f"cached {SAMPLE_USER['email']}" in result["logs"]
    assert "posted application/json True" in result["logs"]
    query = effects["redirect"]["query"]
    assert query["e"] == SAMPLE_USER["email"]
    payload = jwt_parts(query["t"])[1]
    assert {k: payload[k] for k in SAMPLE_USER} == SAMPLE_USER


@pytest.mark.parametrize(
    ("value", "kind"),
    [("{1, 2}", "set"), ("object()", "object"), ("b'x'", "bytes"), ("{'a': [{1}]}", "set")],
    ids=["set", "object", "bytes", "nested-set"],
)
@pytest.mark.parametrize(
    ("call", "label"),
    [
        ("api.id_token.set_custom_claim('x', {v})", "id_token.set_custom_claim('x')"),
        ("api.access_token.set_custom_claim('x', {v})", "access_token.set_custom_claim('x')"),
        ("api.user.set_app_metadata('plan', {v})", "user.set_app_metadata('plan')"),
        ("api.user.set_user_metadata('plan', {v})", "user.set_user_metadata('plan')"),
        ("api.cache.set('k', {v})", "cache.set('k')"),
        ("api.http.post('https://example.com/', json={v})", "http.post(json=...)"),
        (
            "api.redirect.send_user_to('https://example.com/', {{'query': {{'a': {v}}}}})",
            "redirect.send_user_to",
        ),
        (
            "api.redirect.encode_token({{'secret': 's', 'payload': {{'a': {v}}}}})",
            "redirect.encode_token(payload)",
        ),
    ],
    ids=lambda text: text.partition("(")[0].removeprefix("api.") if "{v}" in text else "",
)
def test_a_value_that_is_not_json_is_an_error_naming_it(
    op: Any, call: str, label: str, value: str, kind: str
) -> None:
    result = run(op, "    api.id_token.set_custom_claim('before', 1)\n    " + call.format(v=value))
    assert result["error"] is not None
    assert f"TypeError: {label}" in result["error"]
    assert f": value of type {kind} is not JSON (line 5)" in result["error"]
    assert result["commands"] == []  # the failed execution's commands are not applied
    assert "{1, 2}" not in json.dumps(result) and "object at 0x" not in json.dumps(result)


def test_nan_is_an_error_naming_the_claim(op: Any) -> None:
    result = run(op, "    api.id_token.set_custom_claim('ratio', float('nan'))\n")
    assert result["error"] is not None
    assert "ValueError: id_token.set_custom_claim('ratio'): value is not JSON" in result["error"]


def test_the_error_can_be_caught_and_nothing_is_recorded(op: Any) -> None:
    result = run(
        op,
        "    try:\n"
        "        api.id_token.set_custom_claim('x', {1})\n"
        "    except TypeError as exc:\n"
        "        print('refused:', exc)\n"
        "    api.id_token.set_custom_claim('y', sorted({2, 1}))\n",
    )
    assert (
        "refused: id_token.set_custom_claim('x'): value of type set is not JSON" in (result["logs"])
    )
    assert claims(result) == {"y": [1, 2]}


def test_an_http_body_that_is_not_a_string_is_refused_not_dropped(op: Any, echo: str) -> None:
    result = run(
        op,
        "    try:\n"
        f"        api.http.post('http://{echo}/', body={{'a': 1}}, timeout=3)\n"
        "    except Exception as exc:\n"
        "        print('refused:', type(exc).__name__, exc)\n",
        hosts=(echo,),
    )
    assert "refused: HttpError body is a string" in result["logs"], result


def test_an_http_timeout_that_is_not_a_number_is_refused(op: Any, echo: str) -> None:
    result = run(
        op,
        "    try:\n"
        f"        api.http.post('http://{echo}/', json={{}}, timeout='soon')\n"
        "    except Exception as exc:\n"
        "        print('refused:', type(exc).__name__, exc)\n",
        hosts=(echo,),
    )
    assert "refused: HttpError timeout is a number of seconds" in result["logs"], result
