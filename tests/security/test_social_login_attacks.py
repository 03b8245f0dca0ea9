"""Security review of the social/enterprise logins (issue 12; commits aa14e99 and
1e2ca5a..f8a2259), kept as the attacks' regression tests: each test is one finding (fixed)
or one guard checked.

Everything runs over real HTTP against a live idp (``social_op``) and a real upstream on
loopback (``rogue_upstream``: it signs whatever ID token a test asks for, with its published
key, so the tests play the upstream's side where a finding needs it)."""

# ruff: noqa: F811  (social_op is a fixture imported from tests/connections/social.py)
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from idp.connections import service as connections
from idp.connections.models import Identity
from idp.connections.upstream import transport
from idp.core import clock
from idp.core.errors import ValidationError
from idp.extensions import db, services
from idp.identity import tokens
from idp.identity.models import User
from tests import factories
from tests.conftest import LiveServer
from tests.connections.rogue_upstream import Rogue, rogue_upstream
from tests.connections.social import Arrival, SocialBrowser, social_op  # noqa: F401
from tests.helpers import hidden_inputs, jwt_parts


@pytest.fixture
def rogue() -> Iterator[Rogue]:
    with rogue_upstream() as upstream:
        yield upstream
    clock.reset()


@pytest.fixture
def rogue_b() -> Iterator[Rogue]:
    with rogue_upstream() as upstream:
        yield upstream


def _connect(
    op: LiveServer, rogue: Rogue, client: factories.TestClient | None, name: str, **options: Any
) -> str:
    with op.app.app_context():
        connections.create_connection(
            db.session, name=name, strategy="oidc", display_name=f"Rogue {name}",
            options=rogue.options(**options), box=services().box,
        )  # fmt: skip
        if client is not None:
            connections.enable(db.session, name, client.client_id)
        db.session.commit()
    return name


def _sent(browser: SocialBrowser, name: str) -> dict[str, str]:
    """``connection=name`` at /authorize: the authorization request idp sends upstream."""
    sent = browser.authorize(connection=name)
    assert sent.location, sent
    return {k: v[0] for k, v in parse_qs(urlsplit(sent.location).query).items()}


def _round_trip(browser: SocialBrowser, rogue: Rogue, name: str, **claims: Any) -> Arrival:
    """A whole login through ``rogue`` whose ID token carries ``claims``."""
    asked = _sent(browser, name)
    rogue.id_token = rogue.sign(nonce=asked["nonce"], **claims)
    return browser.callback({"code": "c", "state": asked["state"], "iss": rogue.issuer})


def _user(op: LiveServer, email: str) -> User | None:
    with op.app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge_all()
        return user


def _sub(browser: SocialBrowser, arrival: Arrival) -> str:
    return str(jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"])


# -- F1: the callback holds a write transaction (SQLite's one write lock) across the upstream --


def test_no_transaction_is_open_while_idp_talks_to_the_upstream(
    social_op: LiveServer, rogue: Rogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = social_op
    if op.app.config.get("DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("SQLite's single writer is the point")
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "f1-lock")
    with op.app.app_context():
        path = db.engine.url.database
    seen: list[tuple[str, bool, str]] = []
    real = transport.fetch

    def probe(method: str, url: str, **kw: Any) -> Any:
        # Another writer (another login, a token request) tries to write right now.
        other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            blocked = ""
        except sqlite3.OperationalError as exc:
            blocked = str(exc)
        finally:
            other.close()
        seen.append((urlsplit(url).path, db.session.in_transaction(), blocked))
        return real(method, url, **kw)

    monkeypatch.setattr(transport, "fetch", probe)
    browser = SocialBrowser(op, client)
    arrival = _round_trip(browser, rogue, name, sub="f1-user", email="f1@example.com")
    assert arrival.code, arrival
    held = [(path, why) for path, open_tx, why in seen if open_tx or why]
    assert held == [], f"other writers locked out during upstream calls: {held}"


# -- F2: an unverified upstream email claims the address (pre-account takeover) ----------------


def test_an_unverified_upstream_email_cannot_pre_hijack_the_address(
    social_op: LiveServer, rogue: Rogue
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "f2-squat")
    victim_email = "f2-victim@example.com"
    # 1. Mallory signs in through an upstream that lets anyone type any address.
    mallory = SocialBrowser(op, client)
    arrival = _round_trip(
        mallory, rogue, name, sub="mallory", email=victim_email, email_verified=False
    )
    squatted = _user(op, victim_email)
    if squatted is None:  # refused or created without the address: the fix
        return
    assert arrival.code
    # 2. The victim arrives later: sign-up says "exists, reset your password"; they do
    #    (the token is what the reset mail carries; the POST is the real page).
    with op.app.app_context():
        link = tokens.issue(db.session, tokens.RESET_PASSWORD, squatted.id, 3600)
        db.session.commit()
    victim = requests.Session()
    page = victim.get(op.url + "/password/reset", params={"token": link})
    form = {**hidden_inputs(page.text), "token": link, "password": "Victim-owns-this-1!"}
    done = victim.post(op.url + "/password/reset", data=form)
    assert done.status_code == 200, done.text[:400]
    # 3. Mallory's upstream identity still signs into the account the victim now uses.
    again = SocialBrowser(op, client)
    back = _round_trip(again, rogue, name, sub="mallory", email=victim_email, email_verified=False)
    assert not (back.code and _sub(again, back) == squatted.id), (
        "the attacker's identity logs into the victim's account after the reset"
    )


# -- F3: Unicode case folding links a different address to an existing user --------------------


def test_a_unicode_lookalike_address_does_not_auto_link(
    social_op: LiveServer, rogue: Rogue
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "f3-kelvin", trust_email_verified=True)
    victim = op.factory.gen_user(email="kevin-f3@example.com", email_verified=True)
    browser = SocialBrowser(op, client)
    arrival = _round_trip(
        browser, rogue, name, sub="kelvin", email="\u212aevin-f3@example.com",
        email_verified=True,
    )  # fmt: skip
    assert not (arrival.code and _sub(browser, arrival) == victim.user_id)


# -- F4: the shared redirect URI and no RFC 9207 iss: mix-up sends B's code to A --------------


def test_mix_up_a_code_from_another_upstream_never_reaches_the_chosen_ones_token_endpoint(
    social_op: LiveServer, rogue: Rogue, rogue_b: Rogue
) -> None:
    op = social_op
    client = op.factory.gen_client()
    rogue.metadata["authorization_response_iss_parameter_supported"] = False
    rogue_b.metadata["authorization_response_iss_parameter_supported"] = False
    evil = _connect(op, rogue, client, "f4-evil")  # A: an upstream the attacker runs
    honest = _connect(op, rogue_b, client, "f4-honest")  # B: e.g. GitHub, Google
    victim = SocialBrowser(op, client)
    asked_a = _sent(victim, evil)
    # A's authorization endpoint (the attacker) sends the victim on to B with the client_id
    # idp uses at B; B authenticates the victim (SSO) and answers at the redirect URI
    # registered with B, with its code and the state idp gave A. Each connection has its
    # own redirect URI, so that answer arrives on B's callback while A's login is pending.
    asked_b = _sent(SocialBrowser(op, client), honest)
    assert asked_b["redirect_uri"] != asked_a["redirect_uri"]
    assert asked_b["redirect_uri"].endswith(f"/login/callback/{honest}")
    code_from_b = "code-issued-by-B-for-the-victim"
    rogue.id_token = rogue.sign(nonce=asked_a["nonce"], sub="a-user", email="a@evil.example")
    arrival = victim.callback({"code": code_from_b, "state": asked_a["state"]}, connection=honest)
    assert arrival.params.get("error") == "access_denied", arrival
    leaked = [form for method, path, _h, form in rogue.requests if path == "/token"]
    assert not any(f.get("code") == code_from_b for f in leaked), (
        "B's code and the victim's PKCE verifier were posted to A's token endpoint: "
        f"{leaked[-1] if leaked else None}"
    )


# -- F5: an upstream's odd token answers are 500s, not access_denied ------------------------


@pytest.mark.parametrize(
    "access_token,userinfo",
    [("at-\u00e9\u20ac", True), ("at-\rx", True), ("at-\u20ac", False)],
    ids=["non-latin1-bearer", "cr-in-bearer", "non-ascii-at_hash"],
)
def test_odd_access_tokens_end_as_access_denied(
    social_op: LiveServer, rogue: Rogue, access_token: str, userinfo: bool
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, f"f5-{abs(hash(access_token)) % 10**6}", userinfo=userinfo)
    rogue.token_extra = {"access_token": access_token}
    rogue.userinfo = {"sub": "f5-user", "email": "f5@example.com", "email_verified": True}
    browser = SocialBrowser(op, client)
    asked = _sent(browser, name)
    extra = {} if userinfo else {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}
    rogue.id_token = rogue.sign(nonce=asked["nonce"], sub="f5-user", **extra)
    arrival = browser.callback({"code": "c", "state": asked["state"], "iss": rogue.issuer})
    assert arrival.status != 500 and arrival.params.get("error") == "access_denied", arrival


def test_a_deeply_nested_discovery_document_is_not_a_500(
    social_op: LiveServer, rogue: Rogue
) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "f5-nested")
    rogue.payload["/.well-known/openid-configuration"] = b"[" * 100_000 + b"]" * 100_000
    arrival = SocialBrowser(op, client).authorize(connection=name)
    assert arrival.status != 500 and arrival.params.get("error") == "access_denied", arrival


def test_an_apple_user_field_of_nested_json_is_not_a_500(
    social_op: LiveServer, rogue: Rogue
) -> None:
    op = social_op
    client = op.factory.gen_client()
    with op.app.app_context():
        connections.create_connection(
            db.session, name="f5-apple", strategy="apple", display_name="Apple",
            options=rogue.options(), box=services().box,
        )  # fmt: skip
        connections.enable(db.session, "f5-apple", client.client_id)
        db.session.commit()
    browser = SocialBrowser(op, client)
    asked = _sent(browser, "f5-apple")
    assert asked.get("response_mode") == "form_post"
    rogue.id_token = rogue.sign(nonce=asked["nonce"], sub="f5-apple", email="f5a@example.com")
    posted = {"code": "c", "state": asked["state"], "iss": rogue.issuer, "user": "[" * 4000}
    arrival = browser.callback(posted, method="POST")
    assert arrival.status != 500, arrival


# -- F6: an icon URL rewrites the login page's CSP -----------------------------------------


def test_an_icon_url_cannot_add_csp_directives(social_op: LiveServer, rogue: Rogue) -> None:
    op = social_op
    client = op.factory.gen_client()
    icon = "https://icons.example; frame-ancestors *; base-uri *; x/i.png"
    with pytest.raises(ValidationError, match="icon_url"):
        _connect(op, rogue, client, "f6-icon-refused", icon_url=icon)
    # and one stored before that check existed is not trusted by the login page either
    name = _connect(op, rogue, client, "f6-icon")
    with op.app.app_context():
        stored = connections.get_connection(db.session, name)
        stored.options = {**stored.options, "icon_url": icon}
        db.session.commit()
    resp = SocialBrowser(op, client).http.get(
        op.url + "/authorize", params=SocialBrowser(op, client).params, allow_redirects=False
    )
    csp = resp.headers.get("Content-Security-Policy", "")
    directives = [d.strip().split(" ")[0] for d in csp.split(";") if d.strip()]
    assert directives.count("frame-ancestors") <= 1 and directives.count("base-uri") <= 1, csp


# -- Guards that hold (regression tests for the review) --------------------------------------


def test_malformed_callbacks_are_never_500(social_op: LiveServer, rogue: Rogue) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "g-malformed")
    browser = SocialBrowser(op, client)
    asked = _sent(browser, name)
    uid = asked["state"].split(".")[0]
    url = f"{op.url}/login/callback/{name}"
    cases: list[requests.Response] = [
        browser.http.get(op.url + "/login/callback"),  # no connection: 404, not 500
        browser.http.get(
            f"{op.url}/login/callback/{'n' * 300}",
            params={"state": asked["state"]},
            allow_redirects=False,
        ),
        browser.http.get(url),
        browser.http.get(url, params={"state": ""}),
        browser.http.get(url, params={"state": "."}),
        browser.http.get(url, params={"state": "x" * 5000}),
        browser.http.get(url, params={"state": "\u0000\ufffd.\u00e9"}),
        browser.http.get(url, params=[("state", "a.b"), ("state", asked["state"])]),
        browser.http.get(url + "?state=%ff%fe.%80&code=%ff"),
        browser.http.post(url, json={"state": asked["state"]}),
        browser.http.post(url, data=b"\xff\xfe", headers={"Content-Type": "text/plain"}),
        browser.http.post(url, files={"state": ("s", b"x")}),
        browser.http.post(url, data={"k" * 70: "v", "state": "zz"}),
        browser.http.get(op.url + f"/interaction/{uid}/link"),
        browser.http.post(op.url + f"/interaction/{uid}/link", data={"action": "link"}),
        browser.http.post(op.url + f"/interaction/{'u' * 300}/connection/{'n' * 300}"),
    ]
    assert [r.status_code for r in cases if r.status_code >= 500] == []


def test_a_form_post_answer_replayed_by_a_third_site_finds_no_interaction(
    social_op: LiveServer, rogue: Rogue
) -> None:
    """The POST->GET re-send adds nothing: without the browser's interaction cookie the GET is
    an expired page, and the re-sent URL stays on idp (no open redirect)."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "g-formpost", response_mode="form_post")
    victim = SocialBrowser(op, client)
    asked = _sent(victim, name)
    resp = requests.post(
        f"{op.url}/login/callback/{name}",
        data={"state": asked["state"], "code": "c", "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith(f"/login/callback/{name}?")
    assert requests.get(op.url + resp.headers["Location"]).status_code in (400, 410)


def test_unlink_needs_the_csrf_token(social_op: LiveServer, rogue: Rogue) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "g-unlink")
    extra = _connect(op, rogue, None, "g-unlink-extra")
    browser = SocialBrowser(op, client)
    arrival = _round_trip(browser, rogue, name, sub="g-unlink", email="g-unlink@example.com")
    assert arrival.code
    user = _user(op, "g-unlink@example.com")
    assert user is not None
    with op.app.app_context():
        connections.link_identity(db.session, user.id, extra, "extra-id")
        db.session.commit()
        ident = db.session.scalar(
            select(Identity.id).where(Identity.upstream_user_id == "extra-id")
        )
    posted = browser.http.post(f"{op.url}/account/identities/{ident}/unlink", allow_redirects=False)
    assert posted.status_code == 400
    with op.app.app_context():
        assert db.session.get(Identity, ident) is not None


def test_linking_an_account_with_mfa_still_asks_for_the_factor(
    social_op: LiveServer, rogue: Rogue
) -> None:
    """The password proves the account for the link; the MFA policy still applies."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "g-mfa", trust_email_verified=True)
    owner = op.factory.gen_user(email="g-mfa@example.com", email_verified=True)
    op.factory.clear_actions()
    op.factory.gen_action(
        "mfa", "post-login",
        "def on_execute_post_login(event, api):\n"
        "    api.multifactor.enable('any')\n",
    )  # fmt: skip
    try:
        browser = SocialBrowser(op, client)
        arrival = _round_trip(browser, rogue, name, sub="g-mfa", email=owner.email)
        assert arrival.code is None, "auto-link skipped the MFA the account requires"
        assert arrival.status == 200 and "/mfa" in arrival.url, (arrival.status, arrival.url)
    finally:
        op.factory.clear_actions()


def test_two_first_logins_at_once_make_one_user(social_op: LiveServer, rogue: Rogue) -> None:
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, rogue, client, "g-race")
    browsers = [SocialBrowser(op, client) for _ in range(2)]
    asked = [_sent(b, name) for b in browsers]
    by_code = {
        f"c{i}": rogue.sign(nonce=a["nonce"], sub="racer", email="racer@ex.com")
        for i, a in enumerate(asked)
    }

    def token_answer(form: dict[str, str], headers: dict[str, str]) -> tuple[int, str, bytes]:
        body = {"access_token": "at", "token_type": "Bearer", "id_token": by_code[form["code"]]}
        return 200, "application/json", json.dumps(body).encode()

    rogue.token_answer = token_answer
    rogue.delay["/token"] = 0.3
    results: list[Arrival] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(
                browsers[i].callback(
                    {"code": f"c{i}", "state": asked[i]["state"], "iss": rogue.issuer}
                )
            )
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and all(r.status != 500 for r in results), results
    with op.app.app_context():
        users = db.session.scalars(select(User).where(User.email == "racer@ex.com")).all()
        assert len(users) == 1
