"""Pairwise subject identifiers (OIDC Core §8, §8.1): a pairwise client's users have a ``sub``
of its sector's own, the same in the ID token, userinfo, access tokens and introspection,
stable across logins, different per sector and equal for two clients of one sector; the
sector identifier document (``sector_identifier_uri``) is fetched and must be https, reachable
and list every redirect URI; discovery offers both subject types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from idp.extensions import db, services
from idp.oauth import pairwise
from idp.oauth import service as oauth
from tests.conformance._loopback import Site
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, jwt_parts, login_and_redeem, pkce
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"SECTOR_IDENTIFIER_ALLOW_NETWORKS": "127.0.0.0/8"}
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    running = Site().start()
    yield running
    running.stop()


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


def pairwise_client(op: Any, redirect_uris: list[str], sector_uri: str | None = None) -> Any:
    client = op.factory.gen_client(redirect_uris=redirect_uris)
    with op.app.app_context():
        row = oauth.get_client(db.session, client.client_id)
        pairwise.configure(services().config, row, "pairwise", sector_uri)
        db.session.commit()
    return client


def sub_everywhere(op: Any, client: Any, user: Any) -> str:
    """Log in; the ``sub`` of the ID token, which the access token, userinfo and
    introspection must all repeat."""
    got = login_and_redeem(op.url, client, user)
    sub = jwt_parts(got["id_token"])[1]["sub"]
    assert jwt_parts(got["access_token"])[1]["sub"] == sub
    info = requests.get(f"{op.url}/userinfo", timeout=30,
                        headers={"Authorization": f"Bearer {got['access_token']}"})  # fmt: skip
    assert info.status_code == 200 and info.json()["sub"] == sub
    seen = requests.post(f"{op.url}/oauth/introspect", auth=client.basic, timeout=30,
                         data={"token": got["access_token"]}).json()  # fmt: skip
    assert seen["active"] is True and seen["sub"] == sub
    return str(sub)


def test_discovery_offers_both_subject_types(op: Any) -> None:
    doc = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=30).json()
    assert doc["subject_types_supported"] == ["public", "pairwise"]


def test_pairwise_subs_differ_per_sector_are_stable_and_shared_within_one(op: Any) -> None:
    user = op.factory.gen_user()
    public = op.factory.gen_client(redirect_uris=["https://pub.test/cb"])
    one = pairwise_client(op, ["https://one.test/cb"])
    one_again = pairwise_client(op, ["https://one.test/other"])  # the same sector (host)
    two = pairwise_client(op, ["https://two.test/cb"])

    assert sub_everywhere(op, public, user) == user.user_id
    first = sub_everywhere(op, one, user)
    assert first != user.user_id and user.user_id not in first
    assert sub_everywhere(op, one, user) == first  # stable
    assert sub_everywhere(op, one_again, user) == first  # one sector, one sub
    second = sub_everywhere(op, two, user)
    assert second not in (first, user.user_id)
    other_user = op.factory.gen_user()
    assert sub_everywhere(op, one, other_user) not in (first, other_user.user_id)


def test_the_sector_document_names_the_sector(op: Any, site: Site) -> None:
    uris = ["https://a.test/cb", "https://b.test/cb"]  # two hosts: the document's host decides
    site.documents["/sector.json"] = (200, json.dumps(uris).encode())
    client = pairwise_client(op, uris, f"{site.base}/sector.json")
    user = op.factory.gen_user()
    sub = sub_everywhere(op, client, user)
    with op.app.app_context():
        assert sub == services().box.pairwise_subject("127.0.0.1", user.user_id)


def test_refresh_and_id_token_hint_follow_the_pairwise_sub(op: Any) -> None:
    client = pairwise_client(op, ["https://hint.test/cb"])
    user = op.factory.gen_user()
    browser = Browser(op.url)
    got = login_and_redeem(op.url, client, user, browser=browser)
    sub = jwt_parts(got["id_token"])[1]["sub"]
    # prompt=none with the pairwise ID token as hint: the session's user is recognised
    _verifier, challenge = pkce()
    params = auth_params(client, challenge, prompt="none", id_token_hint=got["id_token"])
    result = browser.authorize(params)
    assert result.code, result.params
    # RP-initiated logout with the hint: no confirmation page, straight to the RP
    resp = browser.http.get(
        f"{op.url}/oidc/logout",
        allow_redirects=False,
        params={
            "id_token_hint": got["id_token"],
            "post_logout_redirect_uri": "https://rp.test/logged-out",
        },
    )
    assert resp.status_code == 303, resp.text[:300]
    assert sub != user.user_id


def test_the_clients_api_sets_and_refuses_pairwise(mgmt: Mgmt, site: Site) -> None:
    base = {"name": "pw", "app_type": "regular_web"}
    made = mgmt.call("POST", "/clients", json=base | {"callbacks": ["https://pw.test/cb"],
                                                      "subject_type": "pairwise"})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["subject_type"] == "pairwise"
    assert made.json()["sector_identifier_uri"] is None
    cid = made.json()["client_id"]
    # moving the callbacks to another host would change every user's sub
    problem(mgmt.call("PATCH", f"/clients/{cid}", json={"callbacks": ["https://else.test/cb"]}),
            400, "another sector")  # fmt: skip
    # two hosts without a sector document
    problem(
        mgmt.call(
            "POST",
            "/clients",
            json=base
            | {
                "name": "pw2",
                "subject_type": "pairwise",
                "callbacks": ["https://x.test/cb", "https://y.test/cb"],
            },
        ),
        400,
        "needs a sector_identifier_uri",
    )
    # not https (and no operator-allowed network for this host)
    problem(
        mgmt.call(
            "POST",
            "/clients",
            json=base
            | {
                "name": "pw3",
                "subject_type": "pairwise",
                "callbacks": ["https://x.test/cb"],
                "sector_identifier_uri": "http://rp.example/sector.json",
            },
        ),
        400,
        "",
    )
    # unreachable
    problem(
        mgmt.call(
            "POST",
            "/clients",
            json=base
            | {
                "name": "pw4",
                "subject_type": "pairwise",
                "callbacks": ["https://x.test/cb"],
                "sector_identifier_uri": f"{site.base}/missing.json",
            },
        ),
        400,
        "answered HTTP 404",
    )
    # a document that misses a redirect URI
    site.documents["/partial.json"] = (200, json.dumps(["https://x.test/cb"]).encode())
    problem(
        mgmt.call(
            "POST",
            "/clients",
            json=base
            | {
                "name": "pw5",
                "subject_type": "pairwise",
                "callbacks": ["https://x.test/cb", "https://y.test/cb"],
                "sector_identifier_uri": f"{site.base}/partial.json",
            },
        ),
        400,
        "does not list the redirect URI 'https://y.test/cb'",
    )
    # not a JSON array
    site.documents["/object.json"] = (200, b'{"redirect_uris": []}')
    problem(
        mgmt.call(
            "POST",
            "/clients",
            json=base
            | {
                "name": "pw6",
                "subject_type": "pairwise",
                "callbacks": ["https://x.test/cb"],
                "sector_identifier_uri": f"{site.base}/object.json",
            },
        ),
        400,
        "JSON array",
    )
    problem(mgmt.call("POST", "/clients", json=base | {"name": "pw7", "subject_type": "secret"}),
            400, "subject_type")  # fmt: skip
    problem(
        mgmt.call(
            "POST",
            "/clients",
            json={"name": "m2m", "app_type": "non_interactive", "subject_type": "pairwise"},
        ),
        400,
        "no users",
    )
    # a callback added later must be in the document too
    site.documents["/full.json"] = (200, json.dumps(["https://x.test/cb"]).encode())
    made = mgmt.call(
        "POST",
        "/clients",
        json=base
        | {
            "name": "pw8",
            "subject_type": "pairwise",
            "callbacks": ["https://x.test/cb"],
            "sector_identifier_uri": f"{site.base}/full.json",
        },
    )
    assert made.status_code == 201, made.text
    problem(
        mgmt.call(
            "PATCH",
            f"/clients/{made.json()['client_id']}",
            json={"callbacks": ["https://x.test/cb", "https://x.test/new"]},
        ),
        400,
        "does not list",
    )


def test_an_https_only_instance_refuses_http_sector_documents(op: Any) -> None:
    config = {"SECTOR_IDENTIFIER_ALLOW_NETWORKS": ""}
    with pytest.raises(Exception, match="must be an https URL"):
        pairwise.validate(config, "pairwise", ["https://x.test/cb"], "http://x.test/s.json")
