"""WebAuthn (issue 5): security keys and passkeys as a second factor and as a passwordless
first factor.

Service level, with a software authenticator: each refusal the server can make (a replayed or
expired challenge, another origin or RP ID, a sign counter going backwards, no user
verification when it is required, an unknown credential). Browser level, with Debian's
Chromium and a CDP virtual authenticator (TESTING-REAL-PARTS.md §3.2): enrolment and challenge
in the MFA step, usernameless sign-in with the resident key, and UV required but not given.
The browser tests run the server with its issuer on ``http://localhost:PORT``: an IP address
cannot be an RP ID.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from idp.extensions import db, services
from idp.flows.models import Interaction
from idp.identity.models import User
from idp.mfa import webauthn as wa
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import (
    Browser,
    auth_params,
    hidden_inputs,
    jwt_parts,
    login_form_action,
    pkce,
    redeem,
)
from tests.mfa.soft_authenticator import SoftAuthenticator, b64u
from tests.mfa.test_totp import follow

RP_ID, ORIGIN = "localhost", "http://localhost:5000"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


# ------------------------------------------------------------------------- service level
def _user(op: Any) -> User:
    db.session.commit()  # SQLite: every transaction holds the write lock the factory needs
    test_user = op.factory.gen_user()
    user = db.session.get(User, test_user.user_id)
    assert user is not None
    return user


def _enrolled(op: Any, uv: str = "preferred", key: SoftAuthenticator | None = None) -> Any:
    user = _user(op)
    key = key or SoftAuthenticator(user_handle=user.id.encode())
    options, challenge = wa.registration_options(RP_ID, "idp", user, [], uv)
    data = wa.verify_registration(key.create(options, ORIGIN), challenge, RP_ID, ORIGIN, uv)
    factor = wa.add_credential(db.session, user.id, data)
    db.session.commit()
    return user, key, factor


def _assert(key: SoftAuthenticator, factor: Any, uv: str = "preferred", **kw: Any) -> Any:
    options, challenge = wa.authentication_options(RP_ID, [factor], uv)
    response = key.get(options, kw.get("origin", ORIGIN), kw.get("rp_id"))
    return wa.verify_assertion(response, challenge, RP_ID, ORIGIN, uv, [factor])


def test_registration_then_assertion_moves_the_counter(op: Any) -> None:
    with op.app.app_context():
        user, key, factor = _enrolled(op)
        assert factor.kind == "webauthn" and factor.data["transports"] == ["usb"]
        assert factor.data["aaguid"] == "00000000-0000-0000-0000-000000000000"
        passed, verified = _assert(key, factor)
        assert passed.id == factor.id and verified and passed.data["sign_count"] == 1
        assert wa.amr(passed) == "hwk"
        # the same credential twice on one account is refused
        options, challenge = wa.registration_options(RP_ID, "idp", user, [factor], "preferred")
        assert options["excludeCredentials"][0]["id"] == factor.data["credential_id"]
        again = wa.verify_registration(key.create(options, ORIGIN), challenge, RP_ID, ORIGIN,
                                       "preferred")  # fmt: skip
        with pytest.raises(wa.WebAuthnError):
            wa.add_credential(db.session, user.id, again)


def test_counter_regression_is_refused(op: Any) -> None:
    with op.app.app_context():
        _, key, factor = _enrolled(op)
        key.count = 4
        _assert(key, factor)  # 5
        key.count = 2  # a cloned authenticator lagging behind
        with pytest.raises(wa.WebAuthnError, match="sign count"):
            _assert(key, factor)
        key.count = 4  # the same count again is refused too
        with pytest.raises(wa.WebAuthnError, match="sign count"):
            _assert(key, factor)


@pytest.mark.parametrize("where", ["origin", "rp_id"])
def test_another_origin_or_rp_id_is_refused(op: Any, where: str) -> None:
    with op.app.app_context():
        _, key, factor = _enrolled(op)
        wrong = {"origin": "http://evil.test:5000"} if where == "origin" else {"rp_id": "evil.test"}
        with pytest.raises(wa.WebAuthnError):
            _assert(key, factor, **wrong)
        user = _user(op)
        options, challenge = wa.registration_options(RP_ID, "idp", user, [], "preferred")
        origin = wrong.get("origin", ORIGIN)
        with pytest.raises(wa.WebAuthnError):
            wa.verify_registration(key.create(options, origin, wrong.get("rp_id")), challenge,
                                   RP_ID, ORIGIN, "preferred")  # fmt: skip


def test_user_verification_required_but_missing_is_refused(op: Any) -> None:
    with op.app.app_context():
        user = _user(op)
        lazy = SoftAuthenticator(uv=False)
        options, challenge = wa.registration_options(RP_ID, "idp", user, [], "required")
        assert options["authenticatorSelection"]["userVerification"] == "required"
        with pytest.raises(wa.WebAuthnError):
            wa.verify_registration(lazy.create(options, ORIGIN), challenge, RP_ID, ORIGIN,
                                   "required")  # fmt: skip
        _user2, key, factor = _enrolled(op)
        key.uv = False
        with pytest.raises(wa.WebAuthnError):
            _assert(key, factor, uv="required")
        _factor, verified = _assert(key, factor, uv="preferred")  # accepted, but not as UV
        assert verified is False


def test_unknown_credential_and_garbage_are_refused(op: Any) -> None:
    with op.app.app_context():
        _, _key, factor = _enrolled(op)
        stranger = SoftAuthenticator()
        for response in ("", "[]", "{", '{"response": 1}'):
            with pytest.raises(wa.WebAuthnError):
                wa.verify_assertion(response, b"x" * 32, RP_ID, ORIGIN, "preferred", [factor])
        with pytest.raises(wa.WebAuthnError, match="unknown credential"):
            _assert(stranger, factor)


def test_challenges_are_single_use_and_expire(op: Any, clock: Any) -> None:
    from idp.flows import service as flows
    from idp.flows.state import LoginState, load
    from idp.oauth.authorize import AuthorizationRequest

    with op.app.app_context():
        client = op.factory.gen_client()
        request = AuthorizationRequest(
            client_id=client.client_id, redirect_uri="https://rp.test/cb", params={},
            scope="openid", audience=None, prompts=(), max_age=None, hint_sub=None,
        )  # fmt: skip
        state = LoginState(request=request, prompt="login").as_json()
        _secret, row = flows.create_interaction(db.session, client.client_id, state, 900)

        def put(purpose: str, challenge: bytes) -> None:
            current = load(row)
            assert current is not None
            wa.put_challenge(row, current, purpose, challenge)
            db.session.commit()

        def take(purpose: str) -> bytes | None:
            challenge, _state = wa.take_challenge(db.session, row, purpose)
            db.session.commit()
            return challenge

        put("mfa", b"c" * 32)
        assert take("login") is None  # wrong purpose: gone too
        put("mfa", b"c" * 32)
        assert take("mfa") == b"c" * 32
        assert take("mfa") is None  # replayed
        put("mfa", b"d" * 32)
        clock.advance(wa.CHALLENGE_TTL + 1)
        assert take("mfa") is None  # expired
        db.session.delete(db.session.get(Interaction, row.uid))
        db.session.commit()


def test_rp_is_the_issuer() -> None:
    assert wa.relying_party("https://login.example.com") == (
        "login.example.com", "https://login.example.com")  # fmt: skip
    assert wa.relying_party("http://localhost:5123/") == ("localhost", "http://localhost:5123")
    with pytest.raises(wa.WebAuthnError):
        wa.uv_requirement("sometimes")


# ------------------------------------------------------------------------- browser level
@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose issuer is http://localhost:PORT (RP ID "localhost")."""
    tmp = tmp_path_factory.mktemp("webauthn")
    with serving(lambda port: build_app(tmp, port, ISSUER=f"http://localhost:{port}")) as server:
        yield server


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"rp callback")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def rp() -> Iterator[str]:
    """The application's redirect URI: a loopback server answering 200."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cb"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


class Device:
    """A browser context with a CDP virtual authenticator (internal, resident keys, UV)."""

    def __init__(self, chromium: Any, op: LiveServer, rp: str) -> None:
        self.op, self.rp = op, rp
        self.context = chromium.new_context()
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.authenticator = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal",
            "hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True}})["authenticatorId"]  # fmt: skip

    def user_verified(self, value: bool) -> None:
        self.cdp.send("WebAuthn.setUserVerified",
                      {"authenticatorId": self.authenticator, "isUserVerified": value})  # fmt: skip

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator})
        return list(found["credentials"])

    def authorize(self, client: Any, **extra: Any) -> str:
        """Open /authorize on a fresh session; returns the PKCE verifier."""
        self.context.clear_cookies()
        verifier, challenge = pkce()
        query = urlencode(auth_params(client, challenge, **extra))
        self.page.goto(f"{self.op.url}/authorize?{query}")
        return verifier

    def password(self, user: Any) -> None:
        self.page.fill("#email", user.email)
        self.page.fill("#password", user.password)
        self.page.click("form[action$='/login'] button[type=submit]")

    def amr(self, client: Any, verifier: str) -> list[str]:
        self.page.wait_for_url(f"{self.rp}**")
        code = parse_qs(urlsplit(self.page.url).query)["code"][0]
        resp = redeem(self.op.url, client, code, verifier)
        assert resp.status_code == 200, resp.text
        return list(jwt_parts(resp.json()["id_token"])[1]["amr"])

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def device(chromium: Any, local: LiveServer, rp: str) -> Iterator[Device]:
    dev = Device(chromium, local, rp)
    yield dev
    dev.close()


def _enrol_in_browser(dev: Device, client: Any, user: Any) -> str:
    verifier = dev.authorize(client, acr_values="mfa")
    dev.password(user)
    dev.page.get_by_role("button", name="Add a security key or passkey").click()
    dev.page.get_by_text("Save your recovery codes").wait_for()
    dev.page.get_by_role("button", name="I saved them, continue").click()
    return verifier


@pytest.mark.browser
def test_security_key_enrolled_then_asked_as_second_factor(device: Device) -> None:
    op = device.op
    client, user = op.factory.gen_client(redirect_uris=[device.rp]), op.factory.gen_user()
    verifier = _enrol_in_browser(device, client, user)
    assert device.amr(client, verifier) == ["pwd", "hwk", "mfa"]
    [credential] = device.credentials()
    assert credential["isResidentCredential"] and credential["signCount"] == 1

    verifier = device.authorize(client, acr_values="mfa")
    device.password(user)
    device.page.get_by_text("Verify it's you").wait_for()
    device.page.get_by_role("button", name="Use your security key or passkey").click()
    assert device.amr(client, verifier) == ["pwd", "hwk", "mfa"]
    assert device.credentials()[0]["signCount"] == 2


@pytest.mark.browser
def test_passwordless_sign_in_with_the_resident_key(device: Device) -> None:
    op = device.op
    client, user = op.factory.gen_client(redirect_uris=[device.rp]), op.factory.gen_user()
    _enrol_in_browser(device, client, user)
    device.page.wait_for_url(f"{device.rp}**")

    # no email, no password, and acr_values=mfa is met by the verified key alone
    verifier = device.authorize(client, acr_values="mfa")
    device.page.get_by_role("button", name="Sign in with a passkey").click()
    assert device.amr(client, verifier) == ["hwk", "mfa"]


@pytest.mark.browser
def test_user_verification_required_but_not_given_is_refused(device: Device) -> None:
    op = device.op
    client, user = op.factory.gen_client(redirect_uris=[device.rp]), op.factory.gen_user()
    _enrol_in_browser(device, client, user)
    device.page.wait_for_url(f"{device.rp}**")
    config = op.app.extensions["idp.services"].config
    config["MFA_WEBAUTHN_USER_VERIFICATION"] = "required"
    try:
        device.user_verified(False)
        device.authorize(client)
        device.page.get_by_role("button", name="Sign in with a passkey").click()
        device.page.get_by_text("Try again").wait_for()
        # still on the login page: no session, no code
        assert not device.page.url.startswith(device.rp)
        assert login_form_action(device.page.content())
        device.password(user)  # the second factor refuses the same way
        device.page.get_by_role("button", name="Use your security key or passkey").click()
        device.page.get_by_text("Try again").wait_for()
        assert "/mfa" in device.page.url
    finally:
        config["MFA_WEBAUTHN_USER_VERIFICATION"] = "preferred"


# ----------------------------------------------------------------- routes, over plain HTTP
def _uid(page: str) -> str:
    found = re.search(r'action="/interaction/([^/"]+)/', page)
    assert found, page[:400]
    return found.group(1)


def _options(browser: Browser, path: str, page: str) -> requests.Response:
    token = hidden_inputs(page)["csrf_token"]
    return browser.http.post(f"{browser.base}{path}", headers={"X-CSRFToken": token})


def _post(browser: Browser, path: str, page: str, credential: str) -> requests.Response:
    data = {"csrf_token": hidden_inputs(page)["csrf_token"], "credential": credential}
    return browser.http.post(f"{browser.base}{path}", data=data, allow_redirects=False)


def test_routes_enrol_challenge_and_passwordless_with_a_software_key(op: Any) -> None:
    """The same ceremonies as the browser's, posted by hand (RP ID 127.0.0.1 is fine here)."""
    client, user = op.factory.gen_client(), op.factory.gen_user()
    key = SoftAuthenticator(user_handle=user.user_id.encode())
    browser = Browser(op.url)
    verifier, challenge = pkce()
    page = browser.authorize(auth_params(client, challenge, acr_values="mfa"), user).page
    uid = _uid(page)
    assert "Add a security key or passkey" in page
    options = _options(browser, f"/interaction/{uid}/mfa/webauthn/register/options", page)
    assert options.status_code == 200 and options.headers["Cache-Control"] == "no-store"
    created = key.create(options.json(), op.url)
    codes = _post(browser, f"/interaction/{uid}/mfa/webauthn/register", page, created)
    assert codes.status_code == 200 and "Save your recovery codes" in codes.text
    location, _ = follow(browser, post_to(browser, codes.text, "continue"))
    assert location and "code=" in location
    assert _amr(op, client, location, verifier) == ["pwd", "hwk", "mfa"]

    # someone with the password only cannot add a key of their own at the MFA step
    other = Browser(op.url)
    page = other.authorize(auth_params(client, pkce()[1], acr_values="mfa"), user).page
    uid = _uid(page)
    refused = _options(other, f"/interaction/{uid}/mfa/webauthn/register/options", page)
    assert refused.status_code == 403
    options = _options(other, f"/interaction/{uid}/mfa/webauthn/options", page).json()
    assert [c["id"] for c in options["allowCredentials"]] == [b64u(key.cred_id)]
    stranger = SoftAuthenticator(user_handle=user.user_id.encode())
    wrong = _post(other, f"/interaction/{uid}/mfa/webauthn", page, stranger.get(options, op.url))
    assert wrong.status_code == 401 and "not accepted" in wrong.text

    # usernameless: no allowCredentials, the user handle names the account
    third = Browser(op.url)
    verifier, challenge = pkce()
    page = third.authorize(auth_params(client, challenge, acr_values="mfa")).page
    uid = _uid(page)
    options = _options(third, f"/interaction/{uid}/login/passkey/options", page).json()
    assert options["allowCredentials"] == [] and options["userVerification"] == "preferred"
    assertion = key.get(options, op.url)
    location, _ = follow(third, _post(third, f"/interaction/{uid}/login/passkey", page, assertion))
    assert location and "code=" in location
    assert _amr(op, client, location, verifier) == ["hwk", "mfa"]  # UV: no MFA page after it

    # the same assertion again: its challenge was spent
    fourth = Browser(op.url)
    page = fourth.authorize(auth_params(client, pkce()[1])).page
    replay = _post(fourth, f"/interaction/{_uid(page)}/login/passkey", page, assertion)
    assert replay.status_code == 401 and "passkey was not accepted" in replay.text


def _amr(op: Any, client: Any, location: str, verifier: str) -> list[str]:
    code = parse_qs(urlsplit(location).query)["code"][0]
    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 200, resp.text
    return list(jwt_parts(resp.json()["id_token"])[1]["amr"])


def post_to(browser: Browser, page: str, action: str) -> requests.Response:
    form = re.search(r'<form method="post" action="([^"]+)"', page)
    assert form, page[:300]
    data = {"csrf_token": hidden_inputs(page)["csrf_token"], "action": action}
    return browser.http.post(browser.base + form.group(1), data=data, allow_redirects=False)


def test_a_challenge_is_not_taken_from_a_state_another_session_wrote(op: Any) -> None:
    """The state re-read with the challenge must be the one the request checked: a login of
    another session on the same interaction meanwhile (a race on PostgreSQL) gives nothing."""
    from idp.flows import service as flows
    from idp.flows.state import LoginState, load, save
    from idp.flows.step import Step
    from idp.mfa import webauthn_views
    from idp.oauth.authorize import AuthorizationRequest

    client = op.factory.gen_client()
    with op.app.test_request_context("/"):
        request = AuthorizationRequest(
            client_id=client.client_id, redirect_uri="https://rp.test/cb", params={},
            scope="openid", audience=None, prompts=(), max_age=None, hint_sub=None,
        )  # fmt: skip
        mine = LoginState(request=request, prompt="mfa", sid="sid-victim", user_id="u1")
        _secret, row = flows.create_interaction(db.session, client.client_id, mine.as_json(), 900)
        wa.put_challenge(row, mine, "mfa", b"v" * 32)
        db.session.commit()
        step = Step(request, mine, services().clients.get(client.client_id), None, None, row)
        theirs = load(row)
        assert theirs is not None
        theirs.sid = "sid-attacker"  # another session's login wrote the state meanwhile
        save(row, theirs)
        db.session.commit()
        assert webauthn_views._take(step, "mfa") is None
        assert step.state.sid == "sid-victim"  # not swapped for the other state
        db.session.delete(db.session.get(Interaction, row.uid))
        db.session.commit()
