"""Sign-up, email verification, forgotten/reset and changed passwords, and a user's sessions,
with mail going over real SMTP."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import requests

from idp.audit import service as audit
from idp.extensions import db
from idp.identity.models import User
from tests.helpers import (
    Browser,
    auth_params,
    hidden_inputs,
    interaction_uid,
    login_form_action,
    pkce,
)

STRONG = "violet-harbour-tractor-91"


def _login_page(op, browser, client):
    resp = browser.http.get(f"{op.url}/authorize", params=auth_params(client, pkce()[1]))
    assert resp.status_code == 200 and login_form_action(resp.text), resp.url
    return resp


def _signup_url(op, login):
    """The sign-up page of the interaction that ``login`` (a login page) belongs to."""
    return f"{op.url}/interaction/{interaction_uid(login.text)}/signup"


def _signup(op, browser, client, email, password):
    login = _login_page(op, browser, client)
    signup_url = _signup_url(op, login)
    page = browser.http.get(signup_url)
    fields = hidden_inputs(page.text) | {"email": email, "password": password}
    return browser.http.post(signup_url, data=fields, allow_redirects=False)


def _local(op, link):
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == op.url
    return link


def _user(op, email):
    with op.app.app_context():
        return db.session.query(User).filter_by(email=email).one_or_none()


def _events(op, type_, user_id):
    with op.app.app_context():
        return audit.query(db.session, type_=type_, user_id=user_id)


def test_signup_verify_and_sign_in(mailing):
    op, browser = mailing, Browser(mailing.url)
    client, email = op.factory.gen_client(), f"new-{secrets.token_hex(4)}@example.test"
    resp = _signup(op, browser, client, email, STRONG)
    assert resp.status_code == 200 and "Check your email" in resp.text
    user = _user(op, email)
    assert user is not None and user.email_verified is False
    link = _local(op, mailing.inbox.link(email, "Verify"))
    page = requests.get(link)  # a mail scanner's prefetch must not spend the link
    assert page.status_code == 200 and "Verify my email address" in page.text
    session = requests.Session()
    form = hidden_inputs(session.get(link).text)
    done = session.post(f"{op.url}/verify-email", data=form)
    assert done.status_code == 200 and "Email verified" in done.text
    assert _user(op, email).email_verified is True
    again = session.post(f"{op.url}/verify-email", data=form)
    assert again.status_code == 400  # single use
    assert _events(op, "signup.success", user.id) and _events(op, "email.verified", user.id)
    # the new account signs in
    person = type("U", (), {"email": email, "password": STRONG})
    assert Browser(op.url).authorize(auth_params(client, pkce()[1]), person).code


def test_signup_does_not_reveal_existing_accounts(mailing):
    op = mailing
    client, known = op.factory.gen_client(), op.factory.gen_user()
    fresh = f"fresh-{secrets.token_hex(4)}@example.test"
    a = _signup(op, Browser(op.url), client, known.email, STRONG)
    b = _signup(op, Browser(op.url), client, fresh, STRONG)
    assert a.status_code == b.status_code == 200

    def normal(resp, address):
        return re.sub(r"/interaction/[^/]+/", "/interaction/X/", resp.text.replace(address, "@"))

    assert normal(a, known.email) == normal(b, fresh)  # byte-identical but for the inputs
    notice = mailing.inbox.wait_for(known.email, "tried to sign up")
    assert "already exists" in notice.get_payload(decode=True).decode()
    assert _user(op, known.email).password_hash  # the existing account is untouched


def test_weak_or_common_passwords_are_refused(mailing):
    op, client = mailing, mailing.factory.gen_client()
    for password in ("short", "password", "aaaaaaaaaaaa", "qwertyuiop12"):
        email = f"weak-{secrets.token_hex(4)}@example.test"
        resp = _signup(op, Browser(op.url), client, email, password)
        assert resp.status_code == 400, password
        assert _user(op, email) is None


def test_signup_needs_the_csrf_token(mailing):
    op, browser = mailing, Browser(mailing.url)
    login = _login_page(op, browser, mailing.factory.gen_client())
    email = f"csrf-{secrets.token_hex(4)}@example.test"
    resp = browser.http.post(_signup_url(op, login), data={"email": email, "password": STRONG})
    assert resp.status_code == 400 and _user(op, email) is None


def test_forgot_password_answers_the_same_for_unknown_addresses(mailing):
    op, known = mailing, mailing.factory.gen_user()
    pages = []
    for address in (known.email, f"nobody-{secrets.token_hex(4)}@example.test"):
        session = requests.Session()
        form = hidden_inputs(session.get(f"{op.url}/password/forgot").text)
        resp = session.post(f"{op.url}/password/forgot", data=form | {"email": address})
        pages.append((resp.status_code, resp.text))
    assert pages[0] == pages[1]
    assert mailing.inbox.wait_for(known.email, "Reset")


def test_reset_password_link_is_single_use_and_ends_sessions(mailing):
    op, user = mailing, mailing.factory.gen_user()
    client, old_browser = op.factory.gen_client(), Browser(op.url)
    assert old_browser.authorize(auth_params(client, pkce()[1]), user).code
    session = requests.Session()
    form = hidden_inputs(session.get(f"{op.url}/password/forgot").text)
    session.post(f"{op.url}/password/forgot", data=form | {"email": user.email})
    link = _local(op, mailing.inbox.link(user.email, "Reset"))
    page = session.get(link)
    assert page.status_code == 200
    fields = hidden_inputs(page.text)
    weak = session.post(f"{op.url}/password/reset", data=fields | {"password": "password"})
    assert weak.status_code == 400
    done = session.post(f"{op.url}/password/reset", data=fields | {"password": STRONG})
    assert done.status_code == 200 and "Password changed" in done.text
    assert (
        session.post(
            f"{op.url}/password/reset", data=fields | {"password": STRONG + "x"}
        ).status_code
        == 400
    )
    # the old browser's session is over
    silent = old_browser.authorize(auth_params(client, pkce()[1], prompt="none"))
    assert silent.params.get("error") == "login_required"
    # old password fails, new one works
    assert Browser(op.url).authorize(auth_params(client, pkce()[1]), user).code is None
    renewed = type(user)(user.user_id, user.email, STRONG)
    assert Browser(op.url).authorize(auth_params(client, pkce()[1]), renewed).code
    assert _events(op, "password.reset", user.user_id)


def test_reset_link_expires(mailing, clock):
    op, user = mailing, mailing.factory.gen_user()
    session = requests.Session()
    form = hidden_inputs(session.get(f"{op.url}/password/forgot").text)
    session.post(f"{op.url}/password/forgot", data=form | {"email": user.email})
    link = _local(op, mailing.inbox.link(user.email, "Reset"))
    clock.advance(op.app.config["RESET_LINK_TTL"] + 1)
    assert session.get(link).status_code == 400


def test_change_password_needs_the_current_one_and_ends_other_sessions(mailing):
    op, user = mailing, mailing.factory.gen_user()
    client = op.factory.gen_client()
    here, elsewhere = Browser(op.url), Browser(op.url)
    assert here.authorize(auth_params(client, pkce()[1]), user).code
    assert elsewhere.authorize(auth_params(client, pkce()[1]), user).code
    form = hidden_inputs(here.http.get(f"{op.url}/account/password").text)
    wrong = here.http.post(
        f"{op.url}/account/password",
        data=form | {"current_password": "nope", "new_password": STRONG},
    )
    assert wrong.status_code == 400
    ok = here.http.post(
        f"{op.url}/account/password",
        data=form | {"current_password": user.password, "new_password": STRONG},
    )
    assert ok.status_code == 200 and "was changed" in ok.text
    assert here.authorize(auth_params(client, pkce()[1], prompt="none")).code
    other = elsewhere.authorize(auth_params(client, pkce()[1], prompt="none"))
    assert other.params.get("error") == "login_required"
    assert _events(op, "password.changed", user.user_id)


def test_users_see_and_end_their_sessions(mailing):
    op, user = mailing, mailing.factory.gen_user()
    client = op.factory.gen_client()
    here, elsewhere = Browser(op.url), Browser(op.url)
    assert here.authorize(auth_params(client, pkce()[1]), user).code
    assert elsewhere.authorize(auth_params(client, pkce()[1]), user).code
    page = here.http.get(f"{op.url}/account/sessions")
    assert page.status_code == 200 and page.text.count("/end") == 2
    assert requests.get(f"{op.url}/account/sessions").status_code == 401
    sids = re.findall(r'data-sid="([^"]+)"(?! data-current)', page.text)
    assert len(sids) == 1  # the other browser's session
    other_sid = sids[0]
    form = hidden_inputs(page.text)
    here.http.post(f"{op.url}/account/sessions/{other_sid}/end", data=form)
    other = elsewhere.authorize(auth_params(client, pkce()[1], prompt="none"))
    assert other.params.get("error") == "login_required"
    assert here.authorize(auth_params(client, pkce()[1], prompt="none")).code
