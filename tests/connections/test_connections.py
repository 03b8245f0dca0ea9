"""Connections on a live server: new applications get the database connection; disabling it for
an application takes the login form and sign-up away there (and enabling it gives them back);
users hold identities found by (connection, upstream id) only; post-login actions see the real
connection and the user's identities; the operator's commands; a deleted application leaves no
enablement behind."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from idp.connections import service as connections
from idp.connections.models import ConnectionClient, Identity
from idp.core.errors import ValidationError
from idp.extensions import db
from idp.identity.models import User
from tests.actions.test_lifecycle import idp, idp_fails
from tests.helpers import (
    Browser,
    auth_params,
    hidden_inputs,
    interaction_uid,
    jwt_parts,
    login_and_redeem,
    login_form_action,
    pkce,
)

STRONG = "violet-harbour-tractor-91"
REFUSAL = "no sign-in method enabled"


def enabled_for(op: Any, client_id: str) -> list[str]:
    with op.app.app_context():
        return list(
            db.session.scalars(
                select(ConnectionClient.connection_id).where(
                    ConnectionClient.client_id == client_id
                )
            )
        )


def identities(op: Any, user_id: str) -> list[tuple[str, str, str]]:
    with op.app.app_context():
        return [
            (c.name, i.provider, i.upstream_user_id)
            for i, c in connections.identities_of(db.session, user_id)
        ]


def login_page(op: Any, browser: Browser, client: Any) -> requests.Response:
    return browser.http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1]))


def test_a_new_application_gets_the_database_connection(op: Any) -> None:
    client = op.factory.gen_client()  # through idp.oauth.service, as the API would
    assert enabled_for(op, client.client_id) == ["con_database"]
    created = idp(
        op, "clients", "create", "--name", "cli app", "--type", "spa",
        "--redirect-uri", "https://rp.test/cb",
    )  # fmt: skip
    shown = idp(op, "connections", "show", "database")
    assert {client.client_id, created["client_id"]} <= set(shown["enabled_clients"])
    m2m = op.factory.gen_client("m2m")  # Auth0 enables it on every new app, m2m included
    assert enabled_for(op, m2m.client_id) == ["con_database"]


def test_new_users_get_a_database_identity(op: Any) -> None:
    user = op.factory.gen_user()  # idp.identity.service.create_user, as sign-up does
    assert identities(op, user.user_id) == [("database", "database", user.user_id)]
    made = idp(op, "users", "create", "--email", "cli-user@example.test", "--password", STRONG)
    assert identities(op, made["user_id"]) == [("database", "database", made["user_id"])]


def test_disabling_the_database_connection_refuses_the_form_and_sign_up(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    before = login_page(op, browser, client)  # an interaction opened while it was enabled
    assert before.status_code == 200 and login_form_action(before.text)
    uid = interaction_uid(before.text)
    fields = hidden_inputs(before.text)

    data = idp(op, "connections", "disable", "database", "--client-id", client.client_id)
    assert client.client_id not in data["enabled_clients"]
    assert enabled_for(op, client.client_id) == []

    page = login_page(op, browser, client)
    assert page.status_code == 403 and REFUSAL in page.text
    assert login_form_action(page.text) is None and 'type="password"' not in page.text
    assert Browser(op.url).authorize(auth_params(client, pkce()[1]), user).code is None

    # the form of the interaction opened before does not log in either, and answers the
    # same for a right password, a wrong one and an unknown address (no enumeration)
    answers = []
    for email, password in (
        (user.email, user.password),
        (user.email, "wrong-password-1"),
        ("nobody@example.test", "wrong-password-1"),
    ):
        resp = browser.http.post(
            f"{op.url}/interaction/{uid}/login",
            data=fields | {"email": email, "password": password},
            allow_redirects=False,
        )
        answers.append((resp.status_code, resp.text.replace(fields["csrf_token"], "")))
        assert resp.status_code == 403 and "Location" not in resp.headers
    assert answers[0] == answers[1] == answers[2]
    assert "login_session" not in " ".join(browser.http.cookies.keys())

    # passkeys belong to the database connection: no challenge, and no passkey login
    passkey = f"{op.url}/interaction/{uid}/login/passkey"
    options = browser.http.post(passkey + "/options", headers={"X-CSRFToken": fields["csrf_token"]})
    assert options.status_code == 403 and options.json() == {"error": "connection_disabled"}
    resp = browser.http.post(passkey, data=fields | {"credential": "{}"}, allow_redirects=False)
    assert resp.status_code == 403 and REFUSAL in resp.text

    signup = f"{op.url}/interaction/{uid}/signup"
    shown = browser.http.get(signup)
    assert shown.status_code == 403 and REFUSAL in shown.text and "<form" not in shown.text
    email = "refused-signup@example.test"
    posted = browser.http.post(signup, data=fields | {"email": email, "password": STRONG})
    assert posted.status_code == 403
    with op.app.app_context():
        assert db.session.scalar(select(User).where(User.email == email)) is None

    # a browser signed in to idp through another application gets no SSO into this one
    signed_in = Browser(op.url)
    login_and_redeem(op.url, op.factory.gen_client(), user, browser=signed_in)
    sso = signed_in.authorize(auth_params(client, pkce()[1]))
    assert sso.code is None and sso.status == 403 and REFUSAL in sso.page
    silent = signed_in.authorize(auth_params(client, pkce()[1], prompt="none"))
    assert silent.params.get("error") == "login_required" and silent.code is None

    idp(op, "connections", "enable", "database", "--client-id", client.client_id)
    assert signed_in.authorize(auth_params(client, pkce()[1])).code  # SSO again
    assert login_and_redeem(op.url, client, user)["id_token"]
    again = Browser(op.url)
    login = login_page(op, again, client)
    signup = f"{op.url}/interaction/{interaction_uid(login.text)}/signup"
    form = again.http.get(signup)
    assert form.status_code == 200 and "<form" in form.text
    posted = again.http.post(
        signup, data=hidden_inputs(form.text) | {"email": email, "password": STRONG}
    )
    assert posted.status_code == 200, posted.text[:300]
    with op.app.app_context():
        made = db.session.scalar(select(User).where(User.email == email))
        assert made is not None
        made_id = made.id
    assert identities(op, made_id) == [("database", "database", made_id)]


def test_an_identity_is_found_by_connection_and_upstream_id_only(op: Any) -> None:
    first, second = op.factory.gen_user(), op.factory.gen_user()
    with op.app.app_context():
        database = connections.get_connection(db.session, "database")
        other = connections.create_connection(db.session, name="legacy-db", strategy="database")
        db.session.commit()
        one = db.session.get(User, first.user_id)
        two = db.session.get(User, second.user_id)
        assert one is not None and two is not None
        with pytest.raises(ValidationError):  # one upstream account is one identity
            connections.add_identity(db.session, two, database, first.user_id)
        # the same upstream id at another connection is another identity
        connections.add_identity(db.session, two, other, first.user_id)
        db.session.commit()
        found = connections.find_identity(db.session, database, first.user_id)
        assert found is not None and found.user_id == first.user_id
        found = connections.find_identity(db.session, other, first.user_id)
        assert found is not None and found.user_id == second.user_id
        assert connections.find_identity(db.session, other, second.user_id) is None
        # the database holds the rule too, whatever code writes the row
        db.session.add(
            Identity(id="idn_dup", user_id=two.id, connection_id=database.id,
                     provider="database", upstream_user_id=first.user_id, profile={},
                     created_at=0, user_created_at=two.created_at)
        )  # fmt: skip
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


EVENT_ACTION = (
    "def on_execute_post_login(event, api):\n"
    "    api.id_token.set_custom_claim('https://x/connection', event.connection)\n"
    "    api.id_token.set_custom_claim('https://x/identities', event.user.identities)\n"
)


def test_post_login_sees_the_connection_and_every_identity(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    with op.app.app_context():
        extra = connections.create_connection(db.session, name="second-db", strategy="database")
        row = db.session.get(User, user.user_id)
        assert row is not None
        connections.add_identity(db.session, row, extra, "upstream-42")
        db.session.commit()
    op.factory.clear_actions()
    op.factory.gen_action("event", "post-login", EVENT_ACTION)
    try:
        tokens = login_and_redeem(op.url, client, user)
    finally:
        op.factory.clear_actions()
    claims = jwt_parts(tokens["id_token"])[1]
    assert claims["https://x/connection"] == {
        "id": "con_database",
        "name": "database",
        "strategy": "database",
    }
    assert claims["https://x/identities"] == [
        {"provider": "database", "connection": "database", "user_id": user.user_id,
         "isSocial": False},
        {"provider": "database", "connection": "second-db", "user_id": "upstream-42",
         "isSocial": False},
    ]  # fmt: skip


def test_connection_commands(op: Any) -> None:
    client = op.factory.gen_client()
    listed = idp(op, "connections", "list")
    assert listed[0]["name"] == "database" and listed[0]["strategy"] == "database"
    assert listed[0]["options"] == {}  # public options: a secret shows as "(set)"
    shown = idp(op, "connections", "show", "database", "--json")
    assert shown["id"] == "con_database" and client.client_id in shown["enabled_clients"]
    off = idp(op, "connections", "disable", "database", "--client-id", client.client_id)
    assert client.client_id not in off["enabled_clients"]
    on = idp(op, "connections", "enable", "database", "--client-id", client.client_id)
    on_twice = idp(op, "connections", "enable", "database", "--client-id", client.client_id)
    assert client.client_id in on["enabled_clients"]
    assert on_twice["enabled_clients"] == on["enabled_clients"]  # enabling twice is once
    assert "no connection 'nope'" in idp_fails(op, "connections", "show", "nope")
    out = idp_fails(op, "connections", "enable", "database", "--client-id", "no-such-client")
    assert "no client 'no-such-client'" in out


def test_deleting_an_application_removes_its_enablement(op: Any) -> None:
    client = op.factory.gen_client()
    assert enabled_for(op, client.client_id) == ["con_database"]
    idp(op, "clients", "delete", client.client_id)
    assert enabled_for(op, client.client_id) == []
    with op.app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(ConnectionClient)
                .where(ConnectionClient.client_id == client.client_id)
            )
            == 0
        )


@pytest.mark.parametrize("name", ["", "-db", "DB", "db_1", "a" * 64, "db 1"])
def test_connection_names_are_checked(op: Any, name: str) -> None:
    with op.app.app_context(), pytest.raises(ValidationError):
        connections.create_connection(db.session, name=name, strategy="database")


def test_only_the_strategies_that_exist_are_accepted(op: Any) -> None:
    with op.app.app_context(), pytest.raises(ValidationError, match="strategy"):
        connections.create_connection(db.session, name="social", strategy="ldap")
