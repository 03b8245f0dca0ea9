"""Logins through a SAML connection, end to end over HTTP: idp's login page (or
``connection=``, or Home Realm Discovery by email domain), the real SAML IdP of the tests
(pysaml2's server, ``tests/connections/saml_idp.py``), the ACS POST, and the application's
tokens. The browser side is the same as for OIDC upstreams; these tests check what is SAML's."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import func, select

from idp.connections import service as connections
from idp.connections.models import SeenAssertion
from idp.connections.upstream.contract import Started
from idp.extensions import db, services
from tests.conftest import LiveServer
from tests.connections.saml_idp import SamlIdp
from tests.connections.social import Arrival, SocialBrowser
from tests.helpers import hidden_inputs, jwt_parts


def _connect(op: LiveServer, idp: SamlIdp, client: Any, **options: Any) -> str:
    name = "saml-" + secrets.token_hex(3)
    with op.app.app_context():
        connections.create_connection(
            db.session, name=name, strategy="samlp", display_name=f"Corp {name}",
            options=idp.options(**options), box=services().box,
        )  # fmt: skip
        if client is not None:
            connections.enable(db.session, name, client.client_id)
        db.session.commit()
    metadata = requests.get(f"{op.url}/samlp/metadata/{name}", timeout=10)
    assert metadata.status_code == 200, metadata.text[:300]
    assert metadata.headers["Content-Type"].startswith("application/samlmetadata+xml")
    idp.register_sp(metadata.text)  # the IdP's administrator loads idp's SP metadata
    return name


def _post_to_acs(browser: SocialBrowser, name: str, fields: dict[str, str]) -> Arrival:
    url = f"{browser.op.url}/login/callback/{name}"
    return browser.follow(browser.http.post(url, data=fields, allow_redirects=False))


def _login(
    op: LiveServer, idp: SamlIdp, client: Any, name: str, username: str, **extra: str
) -> tuple[SocialBrowser, Arrival, dict[str, str]]:
    browser = SocialBrowser(op, client)
    sent = browser.authorize(connection=name, **extra)
    if sent.location is not None:
        started = Started(url=sent.location, kept={})
    else:  # the HTTP-POST binding: idp's page with a button that posts the AuthnRequest
        action = sent.page.split('action="')[1].split('"')[0]
        started = Started(url=action, kept={}, form=hidden_inputs(sent.page))
    fields = idp.login(started, username)
    return browser, _post_to_acs(browser, name, fields), fields


def test_a_saml_login_ends_in_tokens_for_idps_user(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client, email_verified=True)
    browser, arrival, _ = _login(op, saml_idp, client, name, "alice")
    claims = jwt_parts(browser.tokens(arrival)["id_token"])[1]
    assert claims["sub"].startswith("usr_")
    with op.app.app_context():
        ((identity, connection),) = connections.identities_of(db.session, claims["sub"])
        assert connection.name == name and identity.provider == "samlp"
        assert identity.profile.get("name_id")  # kept for single logout
    # the second login finds the same user through the identity
    again, arrival, _ = _login(op, saml_idp, client, name, "alice")
    assert jwt_parts(again.tokens(arrival)["id_token"])[1]["sub"] == claims["sub"]


def test_the_post_binding_and_force_authn(social_op: LiveServer, saml_idp: SamlIdp) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client, request_binding="post")
    browser, arrival, _ = _login(op, saml_idp, client, name, "bob", prompt="login")
    assert browser.tokens(arrival)
    assert saml_idp.requests[-1]["binding"].endswith("HTTP-POST")
    assert saml_idp.requests[-1]["force_authn"] is True


def test_a_captured_response_signs_nobody_in_elsewhere(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    _browser, arrival, fields = _login(op, saml_idp, client, name, "carol")
    assert arrival.code
    # the same response, captured, posted into a new login of another browser
    second = SocialBrowser(op, client)
    sent = second.authorize(connection=name)
    assert sent.location is not None
    relay = parse_qs(urlsplit(sent.location).query)["RelayState"][0]
    replayed = _post_to_acs(
        second,
        name,
        {"SAMLResponse": fields["SAMLResponse"], "RelayState": relay},
    )
    assert replayed.code is None and replayed.params.get("error") == "access_denied", replayed
    with op.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SeenAssertion)) >= 1


def test_an_acs_post_for_no_login_in_progress_is_a_page(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    """An unsolicited response (IdP-initiated, off by default) or a RelayState of nobody's:
    a readable page, no redirect, nobody signed in."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    fields = saml_idp.respond(None, "mallory")
    for extra in ({}, {"RelayState": "nobody.secret"}):
        resp = requests.post(
            f"{op.url}/login/callback/{name}", data={**fields, **extra}, allow_redirects=False
        )
        assert resp.status_code == 400 and "cannot be completed" in resp.text


def test_home_realm_discovery_sends_a_company_address_to_its_idp(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client, domains=["corp.example"])
    browser = SocialBrowser(op, client)
    page = browser.authorize()
    assert "no password" in page.page  # the login page says so
    fields = {**hidden_inputs(page.page), "email": "dave@Corp.Example", "password": ""}
    action = page.page.split('action="')[1].split('"')[0]
    sent = browser.follow(browser.http.post(op.url + action, data=fields, allow_redirects=False))
    assert sent.location and sent.location.startswith(saml_idp.base), sent
    answer = saml_idp.login(Started(url=sent.location, kept={}), "dave")
    assert browser.tokens(_post_to_acs(browser, name, answer))
    # another domain still gets the password check
    other = SocialBrowser(op, client)
    page = other.authorize()
    fields = {**hidden_inputs(page.page), "email": "eve@elsewhere.example", "password": "x"}
    action = page.page.split('action="')[1].split('"')[0]
    refused = other.http.post(op.url + action, data=fields, allow_redirects=False)
    assert refused.status_code == 401


def test_the_replay_cache_is_shared_and_single_use(social_op: LiveServer) -> None:
    """The database-backed cache idp gives ``saml.finish``: an assertion ID is accepted once,
    by any worker (the primary key decides), until it expires."""
    from idp.connections import replay
    from idp.core import clock

    with social_op.app.app_context():
        assertion_id = "_" + secrets.token_hex(16)
        until = clock.now() + 300
        assert replay.remember(assertion_id, until) is True
        assert replay.remember(assertion_id, until) is False
        assert replay.remember("_" + secrets.token_hex(16), until) is True


def test_the_replay_cache_purges_now_and_then_and_an_expired_id_is_not_a_replay(
    social_op: LiveServer, monkeypatch: Any
) -> None:
    """Expired IDs are purged at most every ``PURGE_SECONDS`` per process, not at every login;
    meanwhile an ID held only by an expired row is still accepted (purged, then inserted),
    and one held by a live row is still a replay."""
    from idp.connections import replay
    from idp.core import clock
    from idp.core.crypto import sha256_hex

    with social_op.app.app_context():
        now = clock.now()
        stale, other = "_" + secrets.token_hex(16), "_" + secrets.token_hex(16)
        db.session.add(SeenAssertion(id_hash=sha256_hex(other), expires_at=now - 10))
        db.session.commit()
        monkeypatch.setattr(replay.SCHEDULE, "next_purge", 0.0)  # due: this call purges
        assert replay.remember("_" + secrets.token_hex(16), now + 300) is True
        assert db.session.get(SeenAssertion, sha256_hex(other)) is None
        db.session.rollback()
        db.session.add_all([
            SeenAssertion(id_hash=sha256_hex(stale), expires_at=now - 10),
            SeenAssertion(id_hash=sha256_hex(other), expires_at=now - 10),
        ])  # fmt: skip
        db.session.commit()
        assert replay.SCHEDULE.next_purge > 0  # not due again for a while
        live = "_" + secrets.token_hex(16)
        assert replay.remember(live, now + 300) is True
        assert db.session.get(SeenAssertion, sha256_hex(other)) is not None  # not purged
        db.session.rollback()
        assert replay.remember(live, now + 300) is False
        assert replay.remember(stale, now + 300) is True  # expired: not a replay
        assert replay.remember(stale, now + 300) is False


def _sp(op: LiveServer, idp: SamlIdp, name: str) -> Any:
    """The live server's SP of connection ``name``, as the IdP knows it."""
    return idp.sps[f"{op.url}/samlp/metadata/{name}"]


def _initiating_client(op: LiveServer) -> Any:
    from idp.oauth import service as oauth

    client = op.factory.gen_client()
    with op.app.app_context():
        oauth.set_initiate_login_uri(db.session, client.client_id, "https://rp.test/login")
        db.session.commit()
    return client


def test_idp_initiated_sso_signs_in_and_sends_the_browser_to_the_app_to_start(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    """No code without a request: the app's initiate_login_uri starts the authorization
    request, which the new session answers (SSO)."""
    op = social_op
    client = _initiating_client(op)
    name = _connect(op, saml_idp, client, idp_initiated=True, default_client_id=client.client_id)
    browser = SocialBrowser(op, client)
    fields = saml_idp.respond(None, "frank", sp=_sp(op, saml_idp, name))
    posted = browser.http.post(
        f"{op.url}/login/callback/{name}", data=fields, allow_redirects=False
    )
    assert posted.status_code == 303, posted.text[:300]
    target = urlsplit(posted.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "rp.test", "/login")
    query = parse_qs(target.query)
    assert query["iss"] == [op.url] and "code" not in query
    # the app now asks, as apps do; the session answers without a login page
    arrival = browser.authorize(prompt="none")
    sub = jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"]
    with op.app.app_context():
        assert [c.name for _, c in connections.identities_of(db.session, sub)] == [name]
    # the same response again: the replay cache refuses it (a page, no session)
    again = requests.post(f"{op.url}/login/callback/{name}", data=fields, allow_redirects=False)
    assert again.status_code == 400 and "idp_session" not in again.headers.get("Set-Cookie", "")


def test_idp_initiated_sso_needs_the_apps_initiate_login_uri(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client = op.factory.gen_client()  # no initiate_login_uri
    name = _connect(op, saml_idp, client, idp_initiated=True, default_client_id=client.client_id)
    resp = requests.post(
        f"{op.url}/login/callback/{name}",
        data=saml_idp.respond(None, "gina", sp=_sp(op, saml_idp, name)),
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status_code == 400 and "idp_session" not in resp.headers.get("Set-Cookie", "")


def test_the_idps_groups_land_in_app_metadata_at_each_login(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    for groups in (["eng", "ops"], ["eng"]):
        browser = SocialBrowser(op, client)
        sent = browser.authorize(connection=name)
        assert sent.location is not None
        fields = saml_idp.login(
            Started(url=sent.location, kept={}), "kim", extra={"groups": groups}
        )
        sub = jwt_parts(browser.tokens(_post_to_acs(browser, name, fields))["id_token"])[1]["sub"]
        with op.app.app_context():
            from idp.identity.models import User

            user = db.session.get(User, sub)
            assert user is not None
            got = user.app_metadata.get("groups") or []
            assert set(groups) <= set(got) and ("ops" in got) == ("ops" in groups)


def test_a_domain_hint_or_login_hint_goes_straight_to_the_companys_idp(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client = op.factory.gen_client()
    _connect(op, saml_idp, client, domains=["hinted.example"])
    for hint in ({"domain_hint": "hinted.example"}, {"login_hint": "lou@hinted.example"}):
        sent = SocialBrowser(op, client).authorize(**hint)
        assert sent.location and sent.location.startswith(saml_idp.base), (hint, sent)
    page = SocialBrowser(op, client).authorize(login_hint="lou@other.example")
    assert page.status == 200 and 'name="email"' in page.page  # the login page, as before


def test_a_large_response_many_groups_is_accepted(social_op: LiveServer, saml_idp: SamlIdp) -> None:
    """An enterprise IdP's answer with thousands of groups passes the 64 KB body limit the
    rest of idp keeps (the ACS has its own)."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    browser = SocialBrowser(op, client)
    sent = browser.authorize(connection=name)
    assert sent.location is not None
    groups = [f"cn=group-{i:04d},ou=groups,dc=corp,dc=example" for i in range(2500)]
    fields = saml_idp.login(Started(url=sent.location, kept={}), "lena", extra={"groups": groups})
    assert len(fields["SAMLResponse"]) > 200_000
    assert browser.tokens(_post_to_acs(browser, name, fields))
