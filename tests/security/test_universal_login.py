"""Universal Login attacks (SECURITY.md §2.7-2.8): session fixation, enumeration by response
and by work done, reflected XSS, clickjacking and cookie flags."""

from __future__ import annotations

import argon2

from tests.helpers import (
    Browser,
    auth_params,
    hidden_inputs,
    interaction_uid,
    login_form_action,
    pkce,
)


def _login_page(op, browser, client, **extra):
    resp = browser.http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1], **extra))
    assert resp.status_code == 200 and login_form_action(resp.text), resp.text[:500]
    return resp


def _login_url(op, page) -> str:
    """Where the login form shown on ``page`` posts (``/interaction/<uid>/login``)."""
    return op.url + login_form_action(page.text)


def test_s_ss03_session_id_rotates_at_login_and_planted_id_is_dead(op):
    client, user = op.factory.gen_client(), op.factory.gen_user()
    victim = Browser(op.url)
    victim.http.cookies.set("idp_session", "attacker-chosen-value", domain="127.0.0.1")
    assert victim.authorize(auth_params(client, pkce()[1]), user).code
    issued = [c.value for c in victim.http.cookies if c.name == "idp_session"]
    assert issued and "attacker-chosen-value" not in issued
    attacker = Browser(op.url)
    attacker.http.cookies.set("idp_session", "attacker-chosen-value", domain="127.0.0.1")
    silent = attacker.authorize(auth_params(client, pkce()[1], prompt="none"))
    assert silent.params["error"] == "login_required"
    # re-login rotates again: the first cookie stops working
    first = issued[0]
    assert victim.authorize(auth_params(client, pkce()[1], prompt="login"), user).code
    replay = Browser(op.url)
    replay.http.cookies.set("idp_session", first, domain="127.0.0.1")
    assert (
        replay.authorize(auth_params(client, pkce()[1], prompt="none")).params["error"]
        == "login_required"
    )


def test_s_bf08_login_answers_unknown_and_wrong_password_alike(op):
    client, user = op.factory.gen_client(), op.factory.gen_user()
    answers = []
    for email, password in ((user.email, "wrong-password-1"), ("ghost@example.test", "x" * 12)):
        browser = Browser(op.url)
        page = _login_page(op, browser, client)
        fields = hidden_inputs(page.text) | {"email": email, "password": password}
        resp = browser.http.post(_login_url(op, page), data=fields, allow_redirects=False)
        body = resp.text.replace(email, "@").replace(interaction_uid(page.text), "X")
        answers.append((resp.status_code, body.split('name="csrf_token"')[0]))
    assert answers[0] == answers[1]


def test_s_bf07_unknown_users_cost_the_same_hash_work(op, monkeypatch):
    """Timing equality, shown structurally: one argon2 verification per attempt either way."""
    calls = []
    real = argon2.PasswordHasher.verify

    def counting(self, hash_, password):
        calls.append(hash_)
        return real(self, hash_, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    client, user = op.factory.gen_client(), op.factory.gen_user()
    for email in (user.email, "nobody@example.test"):
        browser = Browser(op.url)
        page = _login_page(op, browser, client)
        fields = hidden_inputs(page.text) | {"email": email, "password": "wrong-password-1"}
        browser.http.post(_login_url(op, page), data=fields, allow_redirects=False)
    assert len(calls) == 2
    assert all(h.startswith("$argon2id$") for h in calls)


def test_s_ss05_reflected_values_are_escaped(op):
    client = op.factory.gen_client()
    browser = Browser(op.url)
    evil = '"><script>alert(1)</script>'
    page = _login_page(op, browser, client, login_hint=evil)
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    again = browser.http.get(_login_url(op, page), allow_redirects=False)  # the form's own URL
    assert "<script>alert(1)" not in again.text and "&lt;script&gt;" in again.text
    bad = browser.http.get(
        f"{op.url}/authorize", params={"client_id": client.client_id, "redirect_uri": evil}
    )
    assert bad.status_code == 400 and "<script>alert(1)" not in bad.text
    state = Browser(op.url).authorize(auth_params(client, pkce()[1], state=evil, prompt="none"))
    assert state.params["state"] == evil  # returned exactly, URL-encoded in the Location


def test_s_ss04_pages_cannot_be_framed_and_have_a_strict_csp(op):
    client = op.factory.gen_client()
    browser = Browser(op.url)
    shown = _login_page(op, browser, client)  # the form as /authorize answers it
    again = browser.http.get(_login_url(op, shown), allow_redirects=False)  # and its own URL
    assert again.status_code == 200 and login_form_action(again.text)
    for page in (shown, again):
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        # scripts only from our origin (WebAuthn, idp/static/webauthn.js): nothing inline, no eval
        directives = dict(d.strip().partition(" ")[::2] for d in csp.split(";"))
        assert directives["script-src"] == "'self'" and "default-src 'none'" in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "no-referrer"


def test_s_ss06_cookie_flags(op):
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    page = _login_page(op, browser, client)
    fields = hidden_inputs(page.text) | {"email": user.email, "password": user.password}
    resp = browser.http.post(_login_url(op, page), data=fields, allow_redirects=False)
    cookie = next(
        v
        for k, v in resp.raw.headers.items()
        if k.lower() == "set-cookie" and v.startswith("idp_session=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    # http issuer in tests: no Secure flag; an https issuer adds it (see create_app)
