"""OpenID Connect Back-Channel Logout 1.0: when a session ends (RP-initiated logout, an
operator's session deletion, the user's /account/sessions), each client that got an ID token
in it and registered a ``backchannel_logout_uri`` receives one Logout Token (§2.4), POSTed as
``logout_token`` (§2.5) to a loopback receiver; the token verifies against the JWKS (joserfc:
neither oauth4webapi nor openid-client validates Logout Tokens) with the claims of §2.4 and
the session's ``sid``/``sub``; a failing receiver gets it again later (retries with backoff,
the same ``jti``); a client without the URI gets nothing; two workers never both send one."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.backchannel import delivery
from idp.backchannel import service as backchannel
from idp.backchannel.models import BackchannelLogout
from idp.extensions import db, services
from idp.oauth import pairwise
from idp.oauth import service as oauth
from idp.oauth.discovery import discovery_document
from tests.conformance._loopback import Site
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, hidden_inputs, jwt_parts, login_and_redeem
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem

EVENT = "http://schemas.openid.net/event/backchannel-logout"
SETTINGS = {
    "BACKCHANNEL_LOGOUT_ALLOW_NETWORKS": "127.0.0.0/8",
    "BACKCHANNEL_LOGOUT_RETRY_SECONDS": 0.1,
    "BACKCHANNEL_LOGOUT_RETRY_MAX_SECONDS": 0.2,
    "BACKCHANNEL_LOGOUT_POLL_SECONDS": 0.05,
    "BACKCHANNEL_LOGOUT_TIMEOUT_SECONDS": 2.0,
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, **SETTINGS)) as server:
        loop = delivery.for_app(server.app)
        loop.start()
        yield server
        loop.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site().start()
    yield running
    running.stop()


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


def bcl_client(op: Any, uri: str | None, pairwise_sub: bool = False, host: str = "rp.test") -> Any:
    client = op.factory.gen_client(redirect_uris=[f"https://{host}/cb"])
    with op.app.app_context():
        row = oauth.get_client(db.session, client.client_id)
        backchannel.configure(row, uri)
        if pairwise_sub:
            pairwise.configure(services().config, row, "pairwise")
        db.session.commit()
    return client


def wait_for(site: Site, count: int, seconds: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(site.posts) < count:
        time.sleep(0.05)
    time.sleep(0.3)  # anything more that would come
    return list(site.posts)


def verify(op: Any, token: str, client_id: str) -> dict[str, Any]:
    """§2.6: the signature by a key of the OP's JWKS, then the claims."""
    keys = KeySet.import_key_set(requests.get(f"{op.url}/.well-known/jwks.json", timeout=30).json())
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    assert decoded.header["typ"] == "logout+jwt"
    claims = dict(decoded.claims)
    assert claims["iss"] == op.url and claims["aud"] == client_id
    assert (
        claims["iat"] <= time.time() + 5 < claims["exp"] + 5
        and claims["exp"] - claims["iat"] == 120
    )
    assert claims["events"] == {EVENT: {}} and claims["jti"]
    assert "nonce" not in claims
    return claims


def rows(op: Any) -> list[BackchannelLogout]:
    with op.app.app_context():
        found = list(db.session.scalars(select(BackchannelLogout)))
        db.session.expunge_all()
        return found


def test_discovery_says_so_when_enabled(op: Any) -> None:
    doc = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=30).json()
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True
    assert doc["frontchannel_logout_supported"] is False  # on purpose: README
    with op.app.test_request_context():
        config = services().config
        config["BACKCHANNEL_LOGOUT_ENABLED"] = False
        try:
            off = discovery_document()
        finally:
            config["BACKCHANNEL_LOGOUT_ENABLED"] = True
    assert off["backchannel_logout_supported"] is False
    assert "backchannel_logout_session_supported" not in off


def test_rp_initiated_logout_reaches_each_client_once(op: Any, site: Site) -> None:
    user, browser = op.factory.gen_user(), Browser(op.url)
    one = bcl_client(op, f"{site.base}/bcl/one")
    two = bcl_client(op, f"{site.base}/bcl/two?tenant=a", pairwise_sub=True, host="two.test")
    silent = bcl_client(op, None)  # no backchannel_logout_uri: nothing for it
    tokens = {c.client_id: login_and_redeem(op.url, c, user, browser=browser)
              for c in (one, two, silent)}  # fmt: skip
    id_claims = {cid: jwt_parts(t["id_token"])[1] for cid, t in tokens.items()}
    sid = id_claims[one.client_id]["sid"]
    assert {c["sid"] for c in id_claims.values()} == {sid}  # one SSO session

    resp = browser.http.get(f"{op.url}/oidc/logout", allow_redirects=False, params={
        "id_token_hint": tokens[one.client_id]["id_token"],
        "post_logout_redirect_uri": "https://rp.test/logged-out"})  # fmt: skip
    assert resp.status_code == 303
    posts = wait_for(site, 2)
    assert sorted(p[0] for p in posts) == ["/bcl/one", "/bcl/two?tenant=a"]
    for path, headers, form in posts:
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        client = one if path == "/bcl/one" else two
        claims = verify(op, form["logout_token"][0], client.client_id)
        assert claims["sid"] == sid
        assert claims["sub"] == id_claims[client.client_id]["sub"]  # pairwise for two
    assert id_claims[two.client_id]["sub"] != user.user_id
    assert {r.status for r in rows(op) if r.sid == sid} == {"delivered"}


def test_a_failing_receiver_gets_it_again_after_an_operator_revocation(
    op: Any, site: Site, mgmt: Mgmt
) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/retry"), op.factory.gen_user()
    got = login_and_redeem(op.url, client, user)
    sid = jwt_parts(got["id_token"])[1]["sid"]
    site.fail_posts = 2  # the first two tries answer 500
    assert mgmt.call("DELETE", f"/sessions/{sid}").status_code == 204
    [(path, _h, form)] = wait_for(site, 1)
    assert path == "/bcl/retry" and site.attempts == 3
    claims = verify(op, form["logout_token"][0], client.client_id)
    [row] = [r for r in rows(op) if r.sid == sid]
    assert row.status == "delivered" and row.attempts == 2 and row.id == claims["jti"]
    assert row.last_error == "the endpoint answered HTTP 500"


def test_the_users_own_account_page_ends_a_session_with_a_logout(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/account"), op.factory.gen_user()
    here, elsewhere = Browser(op.url), Browser(op.url)
    login_and_redeem(op.url, client, user, browser=here)
    other = login_and_redeem(op.url, client, user, browser=elsewhere)
    other_sid = jwt_parts(other["id_token"])[1]["sid"]
    page = here.http.get(f"{op.url}/account/sessions")
    assert f'data-sid="{other_sid}"' in page.text or other_sid in page.text
    here.http.post(f"{op.url}/account/sessions/{other_sid}/end", data=hidden_inputs(page.text))
    [(_p, _h, form)] = wait_for(site, 1)
    assert verify(op, form["logout_token"][0], client.client_id)["sid"] == other_sid


def test_the_operator_ending_all_sessions_notifies_each(op: Any, site: Site, mgmt: Mgmt) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/all"), op.factory.gen_user()
    sids = {jwt_parts(login_and_redeem(op.url, client, user)["id_token"])[1]["sid"]
            for _ in range(2)}  # fmt: skip
    assert mgmt.call("DELETE", f"/users/{user.user_id}/sessions").status_code == 204
    posts = wait_for(site, 2)
    assert {
        verify(op, f["logout_token"][0], client.client_id)["sid"] for _p, _h, f in posts
    } == sids


def test_a_logout_token_is_neither_an_id_token_hint_nor_an_access_token(
    op: Any, site: Site, mgmt: Mgmt
) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/attack"), op.factory.gen_user()
    got = login_and_redeem(op.url, client, user)
    assert (
        mgmt.call("DELETE", f"/sessions/{jwt_parts(got['id_token'])[1]['sid']}").status_code == 204
    )
    [(_p, _h, form)] = wait_for(site, 1)
    token = form["logout_token"][0]
    hint = requests.get(f"{op.url}/oidc/logout", params={"id_token_hint": token}, timeout=30)
    assert "The id_token_hint is not valid." in hint.text
    info = requests.get(f"{op.url}/userinfo", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)  # fmt: skip
    assert info.status_code == 401


def test_two_workers_never_send_one_logout_twice(op: Any) -> None:
    server_loop = delivery.for_app(op.app)
    server_loop.stop()  # two loops of our own, racing for one row
    with op.app.app_context():
        db.session.add(BackchannelLogout(
            id="bcl_lease_test", client_id="nobody", user_id="usr_x", sid="sid_lease",
            status="pending", attempts=0, retry_at=0.0, leased_by=None, leased_until=0.0,
            created_at=0))  # fmt: skip
        db.session.commit()
    one, two = delivery.Delivery(op.app), delivery.Delivery(op.app)
    with op.app.app_context():
        assert [one.claim("bcl_lease_test"), two.claim("bcl_lease_test")] == [True, False]
        one.send("bcl_lease_test")  # the client does not exist: failed at once, not retried
    [row] = [r for r in rows(op) if r.id == "bcl_lease_test"]
    assert row.status == "failed" and row.leased_by is None and "gone" in (row.last_error or "")
    server_loop.start()


def test_old_finished_logouts_are_swept_pending_ones_kept(op: Any) -> None:
    old = int(time.time()) - delivery.KEEP_SECONDS - 10
    with op.app.app_context():
        for status in ("delivered", "failed", "pending"):
            db.session.add(BackchannelLogout(
                id=f"bcl_old_{status}", client_id="nobody", user_id="usr_x", sid=f"old_{status}",
                status=status, attempts=0, retry_at=time.time() + 3600, leased_by=None,
                leased_until=0.0, created_at=old))  # fmt: skip
        db.session.commit()
    assert delivery.Delivery(op.app).sweep() >= 2
    left = {r.id for r in rows(op)}
    assert "bcl_old_pending" in left and not {"bcl_old_delivered", "bcl_old_failed"} & left


def test_the_clients_api_takes_and_checks_the_fields(mgmt: Mgmt) -> None:
    made = mgmt.call("POST", "/clients", json={
        "name": "bcl", "callbacks": ["https://bcl.test/cb"],
        "backchannel_logout_uri": "https://bcl.test/logout",
        "backchannel_logout_session_required": True})  # fmt: skip
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["backchannel_logout_uri"] == "https://bcl.test/logout"
    assert body["backchannel_logout_session_required"] is True
    path = f"/clients/{body['client_id']}"
    problem(mgmt.call("PATCH", path, json={"backchannel_logout_uri": "https://bcl.test/x#frag"}),
            400, "fragment")  # fmt: skip
    problem(mgmt.call("PATCH", path, json={"backchannel_logout_uri": "http://bcl.test/x"}),
            400, "loopback only")  # fmt: skip
    problem(mgmt.call("POST", "/clients", json={"name": "m", "app_type": "non_interactive",
                                                "backchannel_logout_uri": "https://m.test/l"}),
            400, "no sessions")  # fmt: skip
    cleared = mgmt.call("PATCH", path, json={"backchannel_logout_uri": None})
    assert cleared.status_code == 200 and cleared.json()["backchannel_logout_uri"] is None
    assert urlsplit(body["backchannel_logout_uri"]).scheme == "https"
    assert re.fullmatch(r"[A-Za-z0-9]+", body["client_id"])
