"""Attack protection (SECURITY.md §2.8): brute force per identifier+IP, suspicious-IP
throttling, trusted proxies, and the tenant log events they leave."""

from __future__ import annotations

import threading

import pytest
from requests.adapters import HTTPAdapter

from idp.audit import service as audit
from idp.extensions import db, services
from tests.conftest import LiveServer, _free_server, build_app
from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce

SHIELDS = {
    "BRUTE_FORCE_MAX_ATTEMPTS": 3,
    "BRUTE_FORCE_BLOCK_SECONDS": 600,
    "IP_THROTTLE_MAX_FAILURES": 6,
    "IP_THROTTLE_WINDOW_SECONDS": 300,
}


def _serve(tmp, **overrides):
    app, server = _free_server(lambda port: build_app(tmp, port, **SHIELDS, **overrides))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return LiveServer(app, server)


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    """A server that trusts 127.0.0.1 as its proxy, so tests can pick client IPs."""
    live = _serve(tmp_path_factory.mktemp("proxy"), TRUSTED_PROXIES="127.0.0.1/32")
    yield live
    live.server.shutdown()
    with live.app.app_context():
        db.engine.dispose()


class _FromAddress(HTTPAdapter):
    """Connect from another loopback address (Linux routes all of 127.0.0.0/8 locally)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def _attempt(op, client, user, ip=None, password=None, email=None, source=None):
    browser = Browser(op.url)
    if source:
        browser.http.mount("http://", _FromAddress(source))
    if ip:
        browser.http.headers["X-Forwarded-For"] = ip
    if email:
        user = type(user)(user.user_id, email, user.password)
    return browser.authorize(auth_params(client, pkce()[1]), user, password=password)


def _events(op, type_, user_id=None):
    with op.app.app_context():
        return audit.query(db.session, type_=type_, user_id=user_id, limit=1000)


def test_s_bf01_block_looks_like_a_wrong_password(behind_proxy):
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    wrong = [_attempt(op, client, user, "203.0.113.1", "wrong-password") for _ in range(3)]
    assert all(r.status == 401 and "Wrong email or password." in r.page for r in wrong)
    blocked = _attempt(op, client, user, "203.0.113.1")  # the right password
    assert blocked.code is None
    assert blocked.status == wrong[0].status and "Wrong email or password." in blocked.page
    assert _events(op, "account.blocked", user.user_id)
    assert _events(op, "login.blocked")
    # S-BF-06: the owner, from another address, is not locked out
    assert _attempt(op, client, user, "203.0.113.2").code


def test_s_bf03_identifier_variants_share_one_counter(behind_proxy):
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    for email in (user.email.upper(), user.email, " " + user.email.title()):
        assert _attempt(op, client, user, "203.0.113.3", "nope", email=email).status == 401
    assert _attempt(op, client, user, "203.0.113.3").code is None


def test_a_successful_login_clears_the_failures_before_it(behind_proxy):
    """Failures count towards a block only until the owner logs in (Auth0 resets them)."""
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    for _ in range(2):  # one short of the block, twice, with a success in between
        for _ in range(SHIELDS["BRUTE_FORCE_MAX_ATTEMPTS"] - 1):
            assert _attempt(op, client, user, "203.0.113.9", "wrong-password").status == 401
        assert _attempt(op, client, user, "203.0.113.9").code
    assert not _events(op, "account.blocked", user.user_id)


def test_unknown_users_are_counted_too(behind_proxy):
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    ghost = type(user)("none", "ghost@example.test", "whatever-pw")
    results = [_attempt(op, client, ghost, "203.0.113.4") for _ in range(4)]
    assert [r.status for r in results] == [401, 401, 401, 401]


def test_s_bf04_ip_spraying_gets_429(behind_proxy):
    op = behind_proxy
    client = op.factory.gen_client()
    ip = "198.51.100.9"
    for _ in range(6):
        victim = op.factory.gen_user()
        assert _attempt(op, client, victim, ip, "wrong-password").status == 401
    fresh = op.factory.gen_user()
    throttled = _attempt(op, client, fresh, ip)
    assert throttled.status == 429 and throttled.code is None
    assert _events(op, "ip.throttled")
    assert _attempt(op, client, fresh, "198.51.100.10").code  # other addresses unaffected


def test_retry_after_header_on_429(behind_proxy):
    op = behind_proxy
    client, ip = op.factory.gen_client(), "198.51.100.20"
    for _ in range(6):
        _attempt(op, client, op.factory.gen_user(), ip, "wrong-password")
    browser = Browser(op.url)
    browser.http.headers["X-Forwarded-For"] = ip
    page = browser.authorize(auth_params(client, pkce()[1]))
    login_page = browser.http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1]))
    login_url = op.url + login_form_action(login_page.text)
    fields = hidden_inputs(browser.http.get(login_url).text)
    resp = browser.http.post(
        login_url, data=fields | {"email": "a@b.c", "password": "x"}, allow_redirects=False
    )
    assert page.login_shown
    assert resp.status_code == 429 and 0 < int(resp.headers["Retry-After"]) <= 300


def test_s_bf11_spoofed_forwarded_for_is_ignored(behind_proxy):
    """From 127.0.0.2, which is not a trusted proxy, X-Forwarded-For counts for nothing."""
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    for i in range(3):
        result = _attempt(
            op, client, user, f"192.0.2.{i + 1}", "wrong-password", source="127.0.0.2"
        )
        assert result.status == 401
    # every attempt came from 127.0.0.2 whatever the header said: the pair is blocked
    assert _attempt(op, client, user, "192.0.2.99", source="127.0.0.2").code is None
    failures = _events(op, "login.failure", user.user_id)
    assert {e.ip for e in failures} == {"127.0.0.2"}
    # the same header from the trusted proxy is believed
    assert _attempt(op, client, user, "192.0.2.99").code


def test_s_bf12_block_ends_after_its_time(behind_proxy, clock):
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    for _ in range(3):
        _attempt(op, client, user, "203.0.113.50", "wrong-password")
    assert _attempt(op, client, user, "203.0.113.50").code is None
    clock.advance(SHIELDS["BRUTE_FORCE_BLOCK_SECONDS"] + 1)
    assert _attempt(op, client, user, "203.0.113.50").code


def test_operator_unblock(behind_proxy):
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    for _ in range(3):
        _attempt(op, client, user, "203.0.113.60", "wrong-password")
    with op.app.app_context():
        assert services().shields.unblock(user.email.upper()) >= 1
        db.session.commit()
    assert _attempt(op, client, user, "203.0.113.60").code


def test_tenant_log_records_logins_without_secrets(behind_proxy):
    op = behind_proxy
    client, user = op.factory.gen_client(), op.factory.gen_user()
    assert _attempt(op, client, user, "203.0.113.70", "bad-pass-123").status == 401
    assert _attempt(op, client, user, "203.0.113.70").code
    failure = _events(op, "login.failure", user.user_id)[0]
    success = _events(op, "login.success", user.user_id)[0]
    for event in (failure, success):
        assert event.ip == "203.0.113.70" and event.client_id == client.client_id
        assert event.user_agent and event.time > 0
        text = f"{event.description} {event.details}"
        assert user.password not in text and "bad-pass-123" not in text
