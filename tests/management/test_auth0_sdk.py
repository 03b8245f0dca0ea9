"""Auth0's own Python SDK against idp (issue 14): ``auth0-python``'s management client (6.x,
generated from Auth0's API definition; it parses every answer into its own models) creates a
client, an API (resource server), a client grant, a connection and a user, updates and lists
them, and reads the logs. The SDK takes a non-https host as a whole ``base_url``
(``Auth0(base_url="http://127.0.0.1:PORT/api/v2", token=...)``): the 6.x client has no
``protocol`` argument (4.x had one per resource class), and its ``ManagementClient(domain=...)``
is https only. README's "Auth0 SDK compatibility" lists where the two disagreed."""

from __future__ import annotations

from typing import Any

import pytest
from auth0.management import Auth0

from tests.management.conftest import Mgmt


@pytest.fixture
def sdk(mgmt: Mgmt) -> Auth0:
    return Auth0(base_url=f"{mgmt.op.url}/api/v2", token=mgmt.token(), max_retries=0)


def test_a_client(sdk: Auth0) -> None:
    made = sdk.clients.create(name="sdk-app", app_type="regular_web",
                              callbacks=["https://sdk.test/cb"])  # fmt: skip
    assert made.client_id and made.client_secret and made.app_type == "regular_web"
    changed = sdk.clients.update(made.client_id, callbacks=["https://sdk.test/cb2"],
                                 is_first_party=False)  # fmt: skip
    assert changed.callbacks == ["https://sdk.test/cb2"] and changed.is_first_party is False
    assert sdk.clients.get(made.client_id).name == "sdk-app"
    listed = [c.client_id for c in sdk.clients.list(per_page=2)]  # pages until an empty one
    assert made.client_id in listed
    rotated = sdk.clients.rotate_secret(made.client_id)
    assert rotated.client_secret and rotated.client_secret != made.client_secret
    sdk.clients.delete(made.client_id)


def test_an_api_and_a_client_grant(sdk: Auth0) -> None:
    api = sdk.resource_servers.create(identifier="https://sdk-api.test/", name="SDK API",
                                      scopes=[{"value": "read:things",
                                               "description": "Read things"}])  # fmt: skip
    assert api.id and api.identifier == "https://sdk-api.test/"
    api = sdk.resource_servers.update(api.id, name="SDK API 2", scopes=[
        {"value": "read:things", "description": "Read things"},
        {"value": "write:things", "description": "Write things"}])  # fmt: skip
    assert api.name == "SDK API 2" and [s.value for s in api.scopes or []] == [
        "read:things", "write:things"]  # fmt: skip
    assert api.id in [r.id for r in sdk.resource_servers.list()]
    robot = sdk.clients.create(name="sdk-robot", app_type="non_interactive")
    grant = sdk.client_grants.create(client_id=robot.client_id, audience=api.identifier,
                                     scope=["read:things"])  # fmt: skip
    assert grant.id and grant.scope == ["read:things"]
    grant2 = sdk.client_grants.update(grant.id, scope=["read:things", "write:things"])
    assert grant2.scope == ["read:things", "write:things"]
    mine = list(sdk.client_grants.list(client_id=robot.client_id))
    assert [g.id for g in mine] == [grant.id]
    sdk.client_grants.delete(grant.id)
    sdk.resource_servers.delete(api.id)


def test_a_connection_and_a_user(sdk: Auth0) -> None:
    app = sdk.clients.create(name="sdk-login-app", app_type="spa", callbacks=["https://s.test/"])
    made = sdk.connections.create(name="sdk-github", strategy="github",
                                  options={"client_id": "gh-id", "client_secret": "gh-secret"},
                                  enabled_clients=[app.client_id])  # fmt: skip
    assert made.id and made.strategy == "github"
    changed = sdk.connections.update(made.id, display_name="GitHub (SDK)")
    assert changed.display_name == "GitHub (SDK)"
    assert made.id in [c.id for c in sdk.connections.list(strategy=["github"])]
    user = sdk.users.create(connection="database", email="sdk.user@example.test",
                            password="a long passphrase 42!", name="SDK User")  # fmt: skip
    assert user.user_id and user.email == "sdk.user@example.test"
    user = sdk.users.update(user.user_id, app_metadata={"plan": "gold"}, blocked=True)
    assert user.app_metadata == {"plan": "gold"} and user.blocked is True
    found = [u.user_id for u in sdk.users.list(q='email:"sdk.user@example.test"')]
    assert found == [user.user_id]
    assert [u.user_id for u in sdk.users.list_users_by_email(email="sdk.user@example.test")] == [
        user.user_id]  # fmt: skip
    sdk.users.delete(user.user_id)
    sdk.connections.delete(made.id)


def test_logs(sdk: Auth0) -> None:
    sdk.clients.create(name="sdk-logged", app_type="spa")
    page = sdk.logs.list(per_page=5)
    rows: list[Any] = list(page)
    assert rows and rows[0].log_id and rows[0].type
    one = sdk.logs.get(rows[0].log_id)
    assert one.log_id == rows[0].log_id


def test_client_grants_as_the_sdk_lists_them(sdk: Auth0) -> None:
    """What the SDK sends for client grants (take=50, then from=next): every one, once."""
    grants = list(sdk.client_grants.list())
    ids = [g.id for g in grants]
    assert ids and len(ids) == len(set(ids))


def test_connections_checkpoint_pages(sdk: Auth0) -> None:
    """What the SDK sends for connections (take, then from=next): every one, once."""
    for i in range(3):
        sdk.connections.create(name=f"sdk-page-{i}", strategy="github",
                               options={"client_id": "x", "client_secret": "y"})  # fmt: skip
    names = [c.name for c in sdk.connections.list(take=2)]
    assert len(names) == len(set(names)) and {f"sdk-page-{i}" for i in range(3)} <= set(names)
