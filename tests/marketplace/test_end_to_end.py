"""The four plugins installed with ``idp marketplace install --bind`` and driven by real logins
and sign-ups against a live server; webhooks land on a loopback receiver. mfa-by-geography
needs a GeoIP database and a trusted proxy: its own server, in test_geography.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.actions.test_registration import signup, user_by_email, wait_for_execution
from tests.helpers import jwt_parts, login_and_redeem
from tests.marketplace.conftest import idp

pytestmark = pytest.mark.usefixtures("fresh_chain")
NS = "https://claims.example.test"


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def test_user_claims_land_in_the_tokens(op: Any) -> None:
    idp(op, "marketplace", "install", "user-claims", "--bind", "--config", f"namespace={NS}/")
    client, user = op.factory.gen_client(), op.factory.gen_user()
    tokens = login_and_redeem(op.url, client, user)
    id_claims = jwt_parts(tokens["id_token"])[1]
    at_claims = jwt_parts(tokens["access_token"])[1]
    assert at_claims[f"{NS}/email"] == user.email
    assert at_claims[f"{NS}/email_verified"] is True
    assert id_claims[f"{NS}/secretIdentity"] == "Batman"
    assert id_claims[f"{NS}/identities"] == [
        {
            "provider": "database",
            "connection": "database",
            "user_id": user.user_id,
            "isSocial": False,
        }
    ]
    assert f"{NS}/email" not in id_claims and f"{NS}/secretIdentity" not in at_claims


def test_login_webhook_gets_only_the_chosen_fields(op: Any, receiver: Any) -> None:
    data = idp(
        op, "marketplace", "install", "login-webhook", "--bind",
        "--config", f"url={receiver.url}/hooks/login",
        "--config", "fields=user.email,client.client_id,transaction.protocol",
        "--secret", "token=bearer-5ecret-value",
    )  # fmt: skip
    assert data["action"]["allowed_hosts"] == [receiver.host]
    client, user = op.factory.gen_client(), op.factory.gen_user()
    login_and_redeem(op.url, client, user)
    [hook] = receiver.wait(1)
    assert hook.method == "POST" and hook.path == "/hooks/login"
    assert hook.headers["authorization"] == "Bearer bearer-5ecret-value"
    assert hook.headers["content-type"] == "application/json"
    assert hook.json == {
        "type": "post-login",
        "user": {"email": user.email},
        "client": {"client_id": client.client_id},
        "transaction": {"protocol": "oidc-basic-profile"},
    }
    assert b"bearer-5ecret-value" not in hook.body


def test_login_webhook_down_does_not_block_the_login(op: Any, receiver: Any) -> None:
    idp(op, "marketplace", "install", "login-webhook", "--bind",
        "--config", f"url={receiver.url}/status/503", "--secret", "token=t0ken-value")  # fmt: skip
    tokens = login_and_redeem(op.url, op.factory.gen_client(), op.factory.gen_user())
    assert "access_token" in tokens
    assert len(receiver.wait(1)) == 1


def test_new_user_row_is_appended_for_its_connection_only(op: Any, receiver: Any) -> None:
    row = idp(
        op, "marketplace", "install", "new-user-row", "--bind",
        "--config", "connection=database", "--config", f"url={receiver.url}/sheets/append",
        "--config", "columns=email,user_id,connection", "--secret", "token=row-t0ken",
    )  # fmt: skip
    other = idp(
        op, "marketplace", "install", "new-user-row", "--name", "partners-row", "--bind",
        "--config", "connection=partners", "--config", f"url={receiver.url}/partners",
        "--secret", "token=row-t0ken",
    )  # fmt: skip
    assert signup(op, "row@example.test").status_code == 200
    user = user_by_email(op, "row@example.test")
    assert user is not None
    [append] = receiver.wait(1)
    assert append.path == "/sheets/append"
    assert append.headers["authorization"] == "Bearer row-t0ken"
    assert append.json == {"values": [["row@example.test", user.id, "database"]]}
    skipped = wait_for_execution(op, other["action"]["id"])
    assert skipped.outcome == "success" and "skipped: a database user" in skipped.logs
    assert wait_for_execution(op, row["action"]["id"]).outcome == "success"
    assert len(receiver.requests) == 1
