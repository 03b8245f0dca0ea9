"""RFC 8693 token exchange behind the custom-token-exchange trigger: each spec error, the
action's refusals, an idp token exchanged for another API's, delegation (``act``, ``may_act``)
and external subject tokens the action verifies itself, against the live server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests

from idp.core.crypto import random_token
from idp.extensions import db, services
from idp.oauth import service as oauth
from idp.oauth.models import AccessTokenRecord
from idp.oauth.tokens import GrantContext
from tests import factories
from tests.helpers import jwt_parts, login_and_redeem

pytestmark = pytest.mark.usefixtures("fresh_chain")

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
IDP_TOKENS = (
    "def on_execute_custom_token_exchange(event, api):\n"
    "    claims = event.transaction.subject_token_claims\n"
    "    if not claims:\n"
    "        api.access.reject_invalid_subject_token('not an access token of idp')\n"
    "        return\n"
    "    print('exchanging', event.transaction.subject_token)\n"
    "    api.authentication.set_user_by_id(event.transaction.subject_token_user_id)\n"
)


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def exchanger(op: Any, app_type: str = "regular_web") -> factories.TestClient:
    client = op.factory.gen_client(app_type)
    grants = ["authorization_code", GRANT] if app_type == "regular_web" else [GRANT]
    if app_type == "m2m":
        grants = ["client_credentials", GRANT]
    with op.app.app_context():
        oauth.update_client(db.session, client.client_id, grant_types=grants)
        db.session.commit()
    return client


def subject(op: Any, user_id: str, audience: str, scope: str = "read:things",
            **claims: Any) -> str:  # fmt: skip
    """An access token idp issued for ``user_id`` (as the code flow does), ``claims`` added."""
    with op.app.app_context():
        services().keys.refresh()  # the signing key, as a request would load it
        ctx = GrantContext(
            grant_id="grt_" + random_token(12), client_id="some-spa", user_id=user_id,
            scope=scope, audience=audience, auth_time=int(time.time()),
            action_effects={"at": claims} if claims else None,
        )  # fmt: skip
        token = services().issuer.user_access_token(db.session, ctx, scope)["access_token"]
        db.session.commit()
        return str(token)


def exchange(op: Any, client: factories.TestClient, **params: Any) -> requests.Response:
    data = {"grant_type": GRANT, "subject_token_type": AT} | params
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(f"{op.url}/oauth/token", data=data, auth=client.basic, timeout=30)


def setup(op: Any, code: str = IDP_TOKENS) -> tuple[factories.TestClient, Any, str, str]:
    """A bound action, an exchanging client, a user, the API of their token and another."""
    op.factory.gen_action("exchange", "custom-token-exchange", code)
    return (exchanger(op), op.factory.gen_user(), op.factory.gen_api(), op.factory.gen_api())


def error(resp: requests.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == code, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    return str(resp.json().get("error_description", ""))


# ------------------------------------------------------------------ off unless bound and allowed
def test_no_action_bound_is_unsupported_grant_type_and_not_advertised(op: Any) -> None:
    client, user, api = exchanger(op), op.factory.gen_user(), op.factory.gen_api()
    resp = exchange(op, client, subject_token=subject(op, user.user_id, api), audience=api)
    error(resp, 400, "unsupported_grant_type")
    meta = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=30).json()
    assert GRANT not in meta["grant_types_supported"]


def test_bound_action_advertises_the_grant(op: Any) -> None:
    op.factory.gen_action("exchange", "custom-token-exchange", IDP_TOKENS)
    meta = requests.get(f"{op.url}/.well-known/oauth-authorization-server", timeout=30).json()
    assert GRANT in meta["grant_types_supported"]


def test_client_not_allowed_the_grant_is_unauthorized_client(op: Any) -> None:
    _, user, api, other = setup(op)
    plain = op.factory.gen_client()  # a regular web app without the opt-in grant type
    resp = exchange(op, plain, subject_token=subject(op, user.user_id, api), audience=other)
    error(resp, 400, "unauthorized_client")


def test_client_authentication_is_required(op: Any) -> None:
    client, user, api, other = setup(op)
    resp = requests.post(f"{op.url}/oauth/token", timeout=30, data={
        "grant_type": GRANT, "client_id": client.client_id, "subject_token_type": AT,
        "subject_token": subject(op, user.user_id, api), "audience": other,
    })  # fmt: skip
    error(resp, 401, "invalid_client")


def test_a_private_key_jwt_client_exchanges(op: Any) -> None:
    """Any confidential method authenticates the exchange, RFC 7523's assertions too."""
    from tests.conformance._jwt_client_helpers import (
        ASSERTION_TYPE,
        assertion,
        jwks_of,
        register,
        rsa_key,
    )

    _, user, api, other = setup(op)
    key = rsa_key()
    client_id, _ = register(op, "regular_web", method="private_key_jwt", jwks=jwks_of(key))
    with op.app.app_context():
        oauth.update_client(db.session, client_id, grant_types=["authorization_code", GRANT])
        db.session.commit()
    resp = requests.post(f"{op.url}/oauth/token", timeout=30, data={
        "grant_type": GRANT, "subject_token_type": AT, "audience": other,
        "subject_token": subject(op, user.user_id, api), "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(key, client_id, f"{op.url}/oauth/token"),
    })  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["client_id"] == client_id


# ------------------------------------------------------------------ RFC 8693 §2.1 parameters
@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"subject_token_type": None}, "subject_token_type"),
        ({"subject_token": None}, "subject_token"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
         "requested_token_type"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"},
         "requested_token_type"),
        ({"actor_token": "x.y.z"}, "actor_token"),
        ({"actor_token_type": AT}, "actor_token"),
        ({"actor_token": "not-ours", "actor_token_type": AT}, "actor_token"),
    ],
    ids=["no-subject-type", "no-subject", "refresh-type", "id-token-type", "actor-no-type",
         "type-no-actor", "foreign-actor"],
)  # fmt: skip
def test_request_errors_are_invalid_request(op: Any, params: dict[str, Any], words: str) -> None:
    client, user, api, other = setup(op)
    params = {"subject_token": subject(op, user.user_id, api), "audience": other} | params
    assert words in error(exchange(op, client, **params), 400, "invalid_request")


def test_unknown_audience_and_two_audiences_are_invalid_target(op: Any) -> None:
    client, user, api, other = setup(op)
    token = subject(op, user.user_id, api)
    error(exchange(op, client, subject_token=token, audience="https://nowhere.test"),
          400, "invalid_target")  # fmt: skip
    resp = requests.post(f"{op.url}/oauth/token", auth=client.basic, timeout=30, data={
        "grant_type": GRANT, "subject_token_type": AT, "subject_token": token,
        "resource": [api, other],
    })  # fmt: skip
    error(resp, 400, "invalid_target")


def test_a_scope_the_api_does_not_define_is_invalid_scope(op: Any) -> None:
    client, user, api, other = setup(op)
    resp = exchange(op, client, subject_token=subject(op, user.user_id, api), audience=other,
                    scope="read:things admin:everything")  # fmt: skip
    error(resp, 400, "invalid_scope")


def test_a_machine_client_gets_only_what_its_client_grant_allows(op: Any) -> None:
    _, user, api, other = setup(op)
    machine = exchanger(op, "m2m")
    token = subject(op, user.user_id, api)
    error(exchange(op, machine, subject_token=token, audience=other), 400, "invalid_target")
    op.factory.gen_client_grant(machine.client_id, other, ["read:things"])
    error(exchange(op, machine, subject_token=token, audience=other, scope="write:things"),
          400, "invalid_scope")  # fmt: skip
    resp = exchange(op, machine, subject_token=token, scope="read:things")  # its one API
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["aud"] == other


# ------------------------------------------------------------------ what the action decides
def test_an_idp_access_token_exchanged_for_another_api(op: Any) -> None:
    """The subject token from a real code flow (for one API) becomes a token for another."""
    client, user, api, other = setup(op)
    app = op.factory.gen_client()
    first = login_and_redeem(op.url, app, user, scope="openid read:things", audience=api)
    resp = exchange(op, client, subject_token=first["access_token"], audience=other,
                    scope="write:things", requested_token_type=AT)  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["issued_token_type"] == AT and body["token_type"] == "Bearer"
    assert body["scope"] == "write:things" and body["expires_in"] > 0
    assert "refresh_token" not in body and "id_token" not in body
    header, claims = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == user.user_id and claims["aud"] == other
    assert claims["client_id"] == client.client_id and claims["iss"] == op.url
    assert "act" not in claims
    # the issued token is an access token of idp like any other (RFC 7662)
    intro = requests.post(f"{op.url}/oauth/introspect", auth=client.basic, timeout=30,
                          data={"token": body["access_token"]}).json()  # fmt: skip
    assert intro["active"] is True and intro["sub"] == user.user_id


def test_the_execution_is_recorded_without_the_subject_token(op: Any) -> None:
    client, user, api, other = setup(op)
    token = subject(op, user.user_id, api)
    assert exchange(op, client, subject_token=token, audience=other).status_code == 200
    [action] = _actions(op)
    [record] = op.factory.executions(action)
    assert record.trigger == "custom-token-exchange" and record.outcome == "success"
    assert record.client_id == client.client_id and record.request_id
    assert token not in record.logs and "[secret subject_token]" in record.logs
    assert record.commands == [{"op": "authentication.set_user_by_id", "args": [user.user_id],
                                "kwargs": {}}]  # fmt: skip


def test_a_forged_or_revoked_subject_token_is_rejected_by_the_action(op: Any) -> None:
    """idp vouches only for its own, unrevoked tokens: a token signed with another key (same
    claims, same header) reaches the action with no claims, and it rejects it."""
    client, user, api, other = setup(op)
    genuine = subject(op, user.user_id, api)
    head, claims = jwt_parts(genuine)
    forged = ".".join([_b64(head), _b64(claims), _b64(b"x" * 256)])
    reason = error(exchange(op, client, subject_token=forged, audience=other),
                   400, "invalid_request")  # fmt: skip
    assert reason == "not an access token of idp"
    with op.app.app_context():  # revoked, as its grant is at a logout or on refresh reuse
        db.session.get(AccessTokenRecord, claims["jti"]).revoked = True
        db.session.commit()
    error(exchange(op, client, subject_token=genuine, audience=other), 400, "invalid_request")


@pytest.mark.parametrize(
    ("call", "status", "code", "reason"),
    [
        ("api.access.deny('not today')", 403, "access_denied", "not today"),
        ("api.access.deny('invalid_scope', 'too much')", 400, "invalid_scope", "too much"),
        ("api.access.reject_invalid_subject_token('bad token')", 400, "invalid_request",
         "bad token"),
    ],
    ids=["deny", "deny-with-code", "reject-invalid-subject"],
)  # fmt: skip
def test_the_action_refuses(op: Any, call: str, status: int, code: str, reason: str) -> None:
    client, user, api, other = setup(
        op, f"def on_execute_custom_token_exchange(event, api):\n    {call}\n"
    )
    resp = exchange(op, client, subject_token=subject(op, user.user_id, api), audience=other)
    assert error(resp, status, code) == reason
    assert "access_token" not in resp.json()


def test_set_user_by_id_needs_an_existing_user(op: Any) -> None:
    client, user, api, other = setup(
        op, "def on_execute_custom_token_exchange(event, api):\n"
        "    api.authentication.set_user_by_id('usr_nobody')\n",
    )  # fmt: skip
    resp = exchange(op, client, subject_token=subject(op, user.user_id, api), audience=other)
    assert "does not exist" in error(resp, 400, "invalid_request")


def test_no_user_set_and_a_failing_action_fail_closed(op: Any) -> None:
    client, user, api, other = setup(
        op, "def on_execute_custom_token_exchange(event, api):\n    pass\n"
    )
    token = subject(op, user.user_id, api)
    error(exchange(op, client, subject_token=token, audience=other), 403, "access_denied")
    op.factory.clear_actions()
    op.factory.gen_action("boom", "custom-token-exchange",
                          "def on_execute_custom_token_exchange(event, api):\n"
                          "    api.authentication.set_user_by_id(event.transaction.subject_token_claims['sub'])\n"
                          "    raise RuntimeError('boom')\n")  # fmt: skip
    error(exchange(op, client, subject_token=token, audience=other), 403, "access_denied")


def test_a_later_action_cannot_swap_the_user(op: Any) -> None:
    client, user, api, other = setup(op)
    someone = op.factory.gen_user()
    op.factory.gen_action("swap", "custom-token-exchange",
                          "def on_execute_custom_token_exchange(event, api):\n"
                          f"    api.authentication.set_user_by_id('{someone.user_id}')\n")  # fmt: skip
    resp = exchange(op, client, subject_token=subject(op, user.user_id, api), audience=other)
    error(resp, 403, "access_denied")


def test_an_external_token_the_action_verifies_with_its_secret(op: Any) -> None:
    """A token from another issuer: the action checks its HS256 signature with its secret."""
    code = (
        "import base64, hashlib, hmac, json\n"
        "def on_execute_custom_token_exchange(event, api):\n"
        "    if event.transaction.subject_token_type != 'urn:legacy:session':\n"
        "        api.access.reject_invalid_subject_token('unknown token type'); return\n"
        "    head, body, sig = event.transaction.subject_token.split('.')\n"
        "    mac = hmac.new(event.secrets.LEGACY_KEY.encode(), f'{head}.{body}'.encode(), hashlib.sha256)\n"
        "    if base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode() != sig:\n"
        "        api.access.reject_invalid_subject_token('bad signature'); return\n"
        "    claims = json.loads(base64.urlsafe_b64decode(body + '=' * (-len(body) % 4)))\n"
        "    api.authentication.set_user_by_id(claims['uid'])\n"
        "    api.access_token.set_custom_claim('https://example.com/legacy', True)\n"
    )
    op.factory.gen_action("legacy", "custom-token-exchange", code,
                          secrets={"LEGACY_KEY": "legacy-signing-key"})  # fmt: skip
    client, user, api = exchanger(op), op.factory.gen_user(), op.factory.gen_api()
    good = _hs256({"uid": user.user_id}, "legacy-signing-key")
    resp = exchange(op, client, subject_token=good, subject_token_type="urn:legacy:session",
                    audience=api)  # fmt: skip
    assert resp.status_code == 200, resp.text
    claims = jwt_parts(resp.json()["access_token"])[1]
    assert claims["sub"] == user.user_id and claims["https://example.com/legacy"] is True
    bad = _hs256({"uid": user.user_id}, "guessed-key")
    resp = exchange(op, client, subject_token=bad, subject_token_type="urn:legacy:session",
                    audience=api)  # fmt: skip
    assert error(resp, 400, "invalid_request") == "bad signature"


# ------------------------------------------------------------------ helpers
def _actions(op: Any) -> list[str]:
    from sqlalchemy import select

    from idp.actions.models import Action

    with op.app.app_context():
        return list(db.session.scalars(select(Action.id)))


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], key: str) -> str:
    signing = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(mac)}"
