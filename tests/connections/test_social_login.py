"""Logins through an upstream OpenID provider, end to end over HTTP: idp's login page (or
``connection=``), the real upstream (npm ``oidc-provider``), ``/login/callback``, and the
application's tokens. Account linking is safe by default; each attack has its own test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.connections import service as connections
from idp.connections.models import Identity
from idp.extensions import db, services
from idp.identity.models import User
from tests.conftest import LiveServer
from tests.connections.social import SocialBrowser, add_connection, upstream_login
from tests.connections.upstream import OidcUpstream
from tests.helpers import hidden_inputs, jwt_parts

IDENTITIES_ACTION = (
    "def on_execute_post_login(event, api):\n"
    "    api.id_token.set_custom_claim('https://x/identities',\n"
    "        [i['connection'] + ':' + i['user_id'] for i in event.user.identities])\n"
    "    api.id_token.set_custom_claim('https://x/connection', event.connection.name)\n"
    "    api.id_token.set_custom_claim('https://x/methods',\n"
    "        [m['name'] for m in event.authentication.methods])\n"
)


def _identities(op: LiveServer, user_id: str) -> list[tuple[str, str]]:
    with op.app.app_context():
        return [
            (c.name, i.upstream_user_id) for i, c in connections.identities_of(db.session, user_id)
        ]


def _user_by_email(op: LiveServer, email: str) -> User | None:
    with op.app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge_all()
        return user


def _failures(op: LiveServer) -> list[dict[str, Any]]:
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "connection.login_failure")
        )
        return [dict(r.details or {}) for r in rows]


def test_a_first_login_creates_the_user_and_a_second_finds_them(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    op.factory.clear_actions()
    op.factory.gen_action("identities", "post-login", IDENTITIES_ACTION)
    login = "verified-first@example.com"
    browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
    claims = jwt_parts(browser.tokens(arrival)["id_token"])[1]
    user = _user_by_email(op, login)
    assert user is not None and claims["sub"] == user.id  # idp's user, not the upstream's
    assert user.email_verified and user.password_hash is None
    assert (user.profile or {}).get("given_name") == "First"
    assert claims["https://x/identities"] == [f"{name}:{login}"]
    assert claims["https://x/connection"] == name
    assert claims["https://x/methods"] == ["federated"]
    assert _identities(op, user.id) == [(name, login)]

    again, arrival = upstream_login(op, oidc_upstream, client, name, login)
    assert jwt_parts(again.tokens(arrival)["id_token"])[1]["sub"] == user.id
    op.factory.clear_actions()


def test_connection_parameter_skips_the_login_page(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    browser, arrival = upstream_login(
        op, oidc_upstream, client, name, "verified-direct@example.com", direct=True
    )
    assert browser.tokens(arrival)["id_token"]


def test_the_login_page_offers_each_enabled_connection_in_order(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    first = add_connection(op, oidc_upstream, client)
    second = add_connection(op, oidc_upstream, client)
    hidden = add_connection(op, oidc_upstream, None)  # exists, not enabled for the app
    page = SocialBrowser(op, client).authorize().page
    assert 'action="/interaction/' in page and 'name="password"' in page
    assert page.index(f"connection-{first}") < page.index(f"connection-{second}")
    assert f"Continue with Upstream {first}" in page
    assert f"connection-{hidden}" not in page


def test_an_app_with_only_a_social_connection_shows_no_password_form(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client, database=False)
    page = SocialBrowser(op, client).authorize().page
    assert f"connection-{name}" in page and 'name="password"' not in page
    browser, arrival = upstream_login(op, oidc_upstream, client, name, "only-social@example.com")
    assert browser.tokens(arrival)["access_token"]


def test_a_connection_the_app_has_not_enabled_is_refused(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    other = add_connection(op, oidc_upstream, None)
    browser = SocialBrowser(op, client)
    arrival = browser.authorize(connection=other)
    assert arrival.params.get("error") == "invalid_request", arrival
    assert arrival.location and arrival.location.startswith(client.redirect_uri or "")
    # and the button's URL, posted by hand, does not reach the upstream either
    page = browser.authorize()
    uid = page.page.split('action="/interaction/')[1].split("/")[0]
    posted = browser.http.post(
        f"{op.url}/interaction/{uid}/connection/{other}", data=hidden_inputs(page.page),
        allow_redirects=False,
    )  # fmt: skip
    assert posted.status_code == 404 and "not available" in posted.text


def test_a_state_carried_to_another_browser_finds_nothing(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    victim = SocialBrowser(op, client)
    sent = victim.press(victim.authorize(), name)
    assert sent.location is not None
    back = oidc_upstream.login(sent.location, "verified-attacker@example.com")
    thief = SocialBrowser(op, client)
    thief.authorize()  # a login of its own, with its own interaction cookie
    stolen = thief.callback(back, connection=name)
    assert stolen.code is None and stolen.status in (400, 410), stolen
    assert "expired" in stolen.page.lower()
    assert victim.tokens(victim.callback(back))["id_token"]  # the rightful browser still can


def test_a_code_injected_from_another_login_is_refused(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    attacker, victim = SocialBrowser(op, client), SocialBrowser(op, client)
    a_sent = attacker.press(attacker.authorize(), name)
    v_sent = victim.press(victim.authorize(), name)
    assert a_sent.location and v_sent.location
    a_back = oidc_upstream.login(a_sent.location, "verified-mallory@example.com")
    v_back = oidc_upstream.login(v_sent.location, "verified-victim@example.com")
    # the attacker's code with the victim's state: PKCE binds the code to its own login
    injected = victim.callback({**v_back, "code": a_back["code"]})
    assert injected.params.get("error") == "access_denied", injected
    assert injected.params.get("state") == victim.state
    assert _user_by_email(op, "verified-mallory@example.com") is None
    assert any(f.get("connection") == name for f in _failures(op))


def test_a_callback_is_good_once(social_op: LiveServer, oidc_upstream: OidcUpstream) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    browser = SocialBrowser(op, client)
    sent = browser.press(browser.authorize(), name)
    assert sent.location is not None
    back = oidc_upstream.login(sent.location, "verified-once@example.com")
    assert browser.callback(back).code
    replayed = browser.callback(back)
    assert replayed.code is None


def test_a_wrong_state_secret_ends_the_login(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    browser = SocialBrowser(op, client)
    sent = browser.press(browser.authorize(), name)
    assert sent.location is not None
    back = oidc_upstream.login(sent.location, "verified-state@example.com")
    uid = back["state"].split(".")[0]
    arrival = browser.callback({**back, "state": uid + ".forged"})
    assert arrival.params.get("error") == "access_denied"
    assert any(f.get("reason") == "state_mismatch" for f in _failures(op))


def test_an_unverified_upstream_email_never_takes_an_existing_account(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    """nOAuth: an upstream that lets anyone claim any address must not log into its owner."""
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client, trust_email_verified=True)
    victim = op.factory.gen_user(email="victim@example.com")
    _, arrival = upstream_login(op, oidc_upstream, client, name, "victim@example.com")
    assert arrival.params.get("error") == "access_denied", arrival
    assert _identities(op, victim.user_id) == [("database", victim.user_id)]


def test_a_verified_email_is_offered_a_link_proved_by_the_password(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    owner = op.factory.gen_user(email="verified-owner@example.com")
    browser, arrival = upstream_login(op, oidc_upstream, client, name, owner.email)
    assert arrival.status == 200 and "Link your accounts" in arrival.page, arrival
    assert _identities(op, owner.user_id) == [("database", owner.user_id)]  # not yet
    link_url = arrival.url
    fields = {**hidden_inputs(arrival.page), "action": "link", "password": "wrong-password"}
    wrong = browser.follow(browser.http.post(link_url, data=fields, allow_redirects=False))
    assert wrong.status == 401 and wrong.code is None
    fields["password"] = owner.password
    done = browser.follow(browser.http.post(link_url, data=fields, allow_redirects=False))
    claims = jwt_parts(browser.tokens(done)["id_token"])[1]
    assert claims["sub"] == owner.user_id  # the same user, one more identity
    assert _identities(op, owner.user_id) == [
        ("database", owner.user_id), (name, owner.email)
    ]  # fmt: skip
    # next time the identity itself finds the user: no link page
    again, arrival = upstream_login(op, oidc_upstream, client, name, owner.email)
    assert jwt_parts(again.tokens(arrival)["id_token"])[1]["sub"] == owner.user_id


def test_declining_the_link_creates_nothing(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    owner = op.factory.gen_user(email="verified-decline@example.com")
    browser, arrival = upstream_login(op, oidc_upstream, client, name, owner.email)
    fields = {**hidden_inputs(arrival.page), "action": "cancel"}
    done = browser.follow(browser.http.post(arrival.url, data=fields, allow_redirects=False))
    assert done.params.get("error") == "access_denied"
    assert _identities(op, owner.user_id) == [("database", owner.user_id)]


def test_trust_email_verified_links_when_both_sides_verified(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client, trust_email_verified=True)
    owner = op.factory.gen_user(email="verified-trusted@example.com", email_verified=True)
    browser, arrival = upstream_login(op, oidc_upstream, client, name, owner.email)
    assert jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"] == owner.user_id
    # an existing user whose own address is not verified is only offered a link
    other = op.factory.gen_user(email="verified-unproven@example.com", email_verified=False)
    _, arrival = upstream_login(op, oidc_upstream, client, name, other.email)
    assert "Link your accounts" in arrival.page


def test_kept_upstream_tokens_are_sealed(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client, keep_tokens=True)
    login = "verified-keeper@example.com"
    browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
    assert browser.tokens(arrival)
    with op.app.app_context():
        identity = db.session.scalar(select(Identity).where(Identity.upstream_user_id == login))
        assert identity is not None and identity.tokens
        opened = json.loads(services().box.decrypt(identity.tokens.encode()))
        assert opened["access_token"] and opened["access_token"] not in identity.tokens
        assert "access_token" not in json.dumps(identity.profile)
    plain = add_connection(op, oidc_upstream, client)
    browser, arrival = upstream_login(op, oidc_upstream, client, plain, "verified-plain@ex.com")
    with op.app.app_context():
        kept = db.session.scalar(
            select(Identity.tokens).where(Identity.upstream_user_id == "verified-plain@ex.com")
        )
        assert kept is None


def test_an_upstream_error_reaches_the_app_as_access_denied(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    browser = SocialBrowser(op, client)
    sent = browser.press(browser.authorize(), name)
    assert sent.location is not None
    state = dict(p.split("=", 1) for p in sent.location.split("?", 1)[1].split("&"))["state"]
    from urllib.parse import unquote

    arrival = browser.callback({"error": "access_denied", "state": unquote(state)})
    assert arrival.params.get("error") == "access_denied"
    assert arrival.params.get("state") == browser.state


def test_an_unreachable_upstream_ends_cleanly(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client, issuer="http://127.0.0.1:9/nothing")
    arrival = SocialBrowser(op, client).authorize(connection=name)
    assert arrival.params.get("error") == "access_denied", arrival
    assert any(f.get("connection") == name for f in _failures(op))


def test_sso_follows_the_connection_the_session_came_through(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    social_app = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, social_app)
    browser, arrival = upstream_login(op, oidc_upstream, social_app, name, "verified-sso@ex.com")
    assert arrival.code
    again = SocialBrowser(op, social_app)
    again.http = browser.http  # the same browser, a second authorization request
    assert again.authorize(prompt="none").code  # SSO: the app has that connection
    database_only = op.factory.gen_client()
    other = SocialBrowser(op, database_only)
    other.http = browser.http
    refused = other.authorize(prompt="none")
    assert refused.params.get("error") == "login_required"


def test_form_post_answers_are_taken_through_a_get(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client, response_mode="form_post")
    browser = SocialBrowser(op, client)
    sent = browser.press(browser.authorize(), name)
    assert sent.location and "response_mode=form_post" in sent.location
    back = oidc_upstream.login(sent.location, "verified-posted@example.com")
    arrival = browser.callback(back, method="POST")  # cross-site: no CSRF token, by design
    assert browser.tokens(arrival)["id_token"]


def test_the_account_page_removes_a_linked_identity_but_never_the_last(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = add_connection(op, oidc_upstream, client)
    login = "verified-unlinker@example.com"
    browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
    assert arrival.code
    user = _user_by_email(op, login)
    assert user is not None
    page = browser.http.get(op.url + "/account/sessions")
    assert "Sign-in methods" in page.text and "/unlink" not in page.text  # the only one
    extra = add_connection(op, oidc_upstream, None)
    with op.app.app_context():
        connections.link_identity(db.session, user.id, extra, "extra-id")
        db.session.commit()
    page = browser.http.get(op.url + "/account/sessions")
    item = page.text.split("<li data-identity=")
    extra_item = next(i for i in item[1:] if f"Upstream {extra}" in i)
    action = extra_item.split('action="')[1].split('"')[0]
    assert action.endswith("/unlink")
    browser.http.post(op.url + action, data=hidden_inputs(page.text), allow_redirects=False)
    assert _identities(op, user.id) == [(name, login)]
    # the last one stays, even when its form is posted by hand
    with op.app.app_context():
        ((last, _),) = connections.identities_of(db.session, user.id)
        last_id = last.id
    posted = browser.http.post(
        f"{op.url}/account/identities/{last_id}/unlink", data=hidden_inputs(page.text),
        allow_redirects=False,
    )  # fmt: skip
    assert posted.status_code == 303
    assert _identities(op, user.id) == [(name, login)]


@pytest.mark.parametrize("preset", ["google", "microsoft", "gitlab", "linkedin"])
def test_each_oidc_preset_logs_in_through_a_local_upstream(
    social_op: LiveServer, oidc_upstream: OidcUpstream, preset: str
) -> None:
    """A preset is options: its issuer pointed at the local upstream, the rest is the preset's."""
    op = social_op
    client = op.factory.gen_client()
    base = {k: v for k, v in oidc_upstream.options().items() if k != "scopes"}
    name = add_connection(op, oidc_upstream, client, strategy=preset, base=base)
    login = f"verified-{preset}@example.com"
    browser, arrival = upstream_login(op, oidc_upstream, client, name, login)
    assert jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"].startswith("usr_")
    user = _user_by_email(op, login)
    assert user is not None and _identities(op, user.id) == [(name, login)]
    with op.app.app_context():
        provider = db.session.scalar(select(Identity.provider).where(Identity.user_id == user.id))
    assert provider == preset


def test_the_github_preset_logs_in_with_its_verified_primary_email(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    app = oidc_upstream.clients["client_secret_post"]
    base = {
        "client_id": app.client_id, "client_secret": app.client_secret,
        "authorization_url": oidc_upstream.url("/auth"),
        "token_url": oidc_upstream.url("/token"), "profile_url": oidc_upstream.url("/gh/user"),
        "emails_url": oidc_upstream.url("/gh/user/emails"),
    }  # fmt: skip
    name = add_connection(op, oidc_upstream, client, strategy="github", base=base)
    browser, arrival = upstream_login(op, oidc_upstream, client, name, "verified-octo@ex.com")
    assert browser.tokens(arrival)
    user = _user_by_email(op, "verified-octo@ex.com")
    assert user is not None and user.email_verified
    ((upstream_id, nickname),) = [
        (i.upstream_user_id, i.profile.get("login")) for i, _ in _identity_rows(op, user.id)
    ]
    assert upstream_id.isdigit() and nickname == "octo"
    assert (user.profile or {}).get("nickname") == "octo"


def _identity_rows(op: LiveServer, user_id: str) -> list[tuple[Identity, Any]]:
    with op.app.app_context():
        rows = connections.identities_of(db.session, user_id)
        db.session.expunge_all()
        return rows


def test_an_account_without_a_password_is_proved_through_its_own_connection(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    """A user who signs in only through connection A is offered a link when B brings the
    same verified address; signing in through A proves the account (a password cannot)."""
    op = social_op
    client = op.factory.gen_client()
    first = add_connection(op, oidc_upstream, client)
    second = add_connection(op, oidc_upstream, client)
    login = "verified-nopassword@example.com"
    browser, arrival = upstream_login(op, oidc_upstream, client, first, login)
    owner_id = jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"]
    assert _identities(op, owner_id) == [(first, login)]

    browser, arrival = upstream_login(op, oidc_upstream, client, second, login)
    assert "Link your accounts" in arrival.page and 'name="password"' not in arrival.page
    assert f'id="prove-{first}"' in arrival.page and f'id="prove-{second}"' not in arrival.page
    action = f"/interaction/{arrival.url.split('/interaction/')[1].split('/')[0]}"
    sent = browser.follow(
        browser.http.post(
            f"{op.url}{action}/link/connection/{first}", data=hidden_inputs(arrival.page),
            allow_redirects=False,
        )
    )  # fmt: skip
    assert sent.location and sent.location.startswith(oidc_upstream.issuer)
    back = oidc_upstream.login(sent.location, login)
    done = browser.callback(back, connection=first)
    assert jwt_parts(browser.tokens(done)["id_token"])[1]["sub"] == owner_id
    assert sorted(_identities(op, owner_id)) == sorted([(first, login), (second, login)])


def test_proving_with_someone_elses_account_links_nothing(
    social_op: LiveServer, oidc_upstream: OidcUpstream
) -> None:
    op = social_op
    client = op.factory.gen_client()
    first = add_connection(op, oidc_upstream, client)
    second = add_connection(op, oidc_upstream, client)
    login = "verified-target@example.com"
    browser, arrival = upstream_login(op, oidc_upstream, client, first, login)
    owner_id = jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"]
    other, arrival = upstream_login(op, oidc_upstream, client, first, "verified-else@ex.com")
    assert other.tokens(arrival)

    browser, arrival = upstream_login(op, oidc_upstream, client, second, login)
    action = f"/interaction/{arrival.url.split('/interaction/')[1].split('/')[0]}"
    sent = browser.follow(
        browser.http.post(
            f"{op.url}{action}/link/connection/{first}", data=hidden_inputs(arrival.page),
            allow_redirects=False,
        )
    )  # fmt: skip
    assert sent.location is not None
    back = oidc_upstream.login(sent.location, "verified-else@ex.com")  # another account
    done = browser.callback(back, connection=first)
    assert done.params.get("error") == "access_denied"
    assert _identities(op, owner_id) == [(first, login)]
