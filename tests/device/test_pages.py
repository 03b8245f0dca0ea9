"""The verification pages (RFC 8628 §3.3, §5.4, §6.1): the code typed or from the link, the
login pipeline in between, the approval, and what the device then gets."""

from __future__ import annotations

import requests

from tests.device.helpers import Person, device_client, error_of, poll, started
from tests.helpers import hidden_inputs


def test_typed_in_any_case_and_without_the_dash(dev):
    """§6.1: the code is case- and dash-insensitive; spaces are forgiven too."""
    client = device_client(dev)
    body = started(dev.url, client)
    typed = " " + body["user_code"].replace("-", "").lower()[:4] + " " + body["user_code"][5:]
    page = Person(dev.url).go(typed, dev.factory.gen_user())
    assert "Device connected" in page.text
    assert poll(dev.url, client, body["device_code"]).status_code == 200


def test_the_complete_uri_fills_the_form_and_asks_for_a_check(dev):
    """§5.4: a code from verification_uri_complete is shown to be confirmed, never used by
    the GET itself (no login started, no interaction cookie, the device still pending)."""
    client = device_client(dev)
    body = started(dev.url, client)
    http = requests.Session()
    page = http.get(body["verification_uri_complete"], allow_redirects=False)
    assert page.status_code == 200
    assert f'value="{body["user_code"]}"' in page.text
    assert "Check that this code is the one shown on your device" in page.text
    assert 'action="/device"' in page.text and "/interaction/" not in page.text
    assert set(http.cookies.keys()) <= {"idp_csrf"}  # the form's CSRF token only
    assert error_of(poll(dev.url, client, body["device_code"])) == "authorization_pending"


def test_the_approval_page_says_who_and_what(dev):
    client = device_client(dev)
    body = started(dev.url, client, scope="openid email offline_access")
    user = dev.factory.gen_user()
    page = Person(dev.url).go(body["user_code"], user, decision=None)
    assert page.status_code == 200 and "/device/" in page.url
    assert "test native" in page.text and user.email in page.text
    assert "See your email address" in page.text
    assert 'value="allow"' in page.text and 'value="deny"' in page.text


def test_a_wrong_or_spent_code_gets_the_same_answer(dev):
    client = device_client(dev)
    body = started(dev.url, client)
    Person(dev.url).go(body["user_code"], dev.factory.gen_user())
    answers = [Person(dev.url, ip=f"10.9.0.{i}").enter(code)
               for i, code in enumerate(("BCDF-GHJK", "not a code", body["user_code"]))]  # fmt: skip
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert all("That code is not valid" in a.text for a in answers)


def test_the_form_needs_its_csrf_token(dev):
    body = started(dev.url, device_client(dev))
    resp = requests.post(f"{dev.url}/device", data={"user_code": body["user_code"]})
    assert resp.status_code == 400


def test_an_approval_needs_the_browser_that_signed_in(dev):
    """The approval page belongs to the interaction's browser (its cookie) and session."""
    client = device_client(dev)
    body = started(dev.url, client)
    person = Person(dev.url)
    page = person.go(body["user_code"], dev.factory.gen_user(), decision=None)
    stranger = requests.Session()
    form = stranger.get(f"{dev.url}/device")
    fields = hidden_inputs(form.text) | {"decision": "allow"}
    resp = stranger.post(page.url, data=fields, allow_redirects=False)
    assert "Device connected" not in resp.text
    assert error_of(poll(dev.url, client, body["device_code"])) == "authorization_pending"


def test_a_second_click_on_approve(dev):
    client = device_client(dev)
    body = started(dev.url, client)
    person = Person(dev.url)
    page = person.go(body["user_code"], dev.factory.gen_user(), decision=None)
    fields = hidden_inputs(page.text) | {"decision": "allow"}
    first = person.http.post(page.url, data=fields, allow_redirects=False)
    second = person.http.post(page.url, data=fields, allow_redirects=False)
    assert "Device connected" in first.text and "Device connected" in second.text
    assert poll(dev.url, client, body["device_code"]).status_code == 200


def test_a_third_party_app_asks_for_consent_first(dev):
    client = device_client(dev, first_party=False)
    body = started(dev.url, client)
    person = Person(dev.url)
    page = person.go(body["user_code"], dev.factory.gen_user(), consent="deny")
    assert "Device not connected" in page.text
    assert error_of(poll(dev.url, client, body["device_code"])) == "access_denied"


def test_sso_then_approval_without_a_password(dev):
    """An existing session signs the person in (the pipeline's SSO); only the approval is
    asked."""
    client = device_client(dev)
    user = dev.factory.gen_user()
    person = Person(dev.url)
    first = started(dev.url, client)
    person.go(first["user_code"], user)
    second = started(dev.url, client)
    page = person.go(second["user_code"], None)
    assert "Device connected" in page.text
    tokens = poll(dev.url, client, second["device_code"]).json()
    assert tokens["id_token"]


def test_a_post_login_action_that_denies_ends_in_access_denied(dev):
    code = (
        "def on_execute_post_login(event, api):\n"
        "    if event.transaction.protocol == 'oauth2-device-code':\n"
        "        api.access.deny('no devices')\n"
    )
    dev.factory.gen_action("no-devices", "post-login", code)
    try:
        client = device_client(dev)
        body = started(dev.url, client)
        page = Person(dev.url).go(body["user_code"], dev.factory.gen_user())
        assert "Device not connected" in page.text and "no devices" in page.text
        assert error_of(poll(dev.url, client, body["device_code"])) == "access_denied"
    finally:
        dev.factory.clear_actions()


def test_a_client_that_lost_the_grant_is_refused_at_the_approval(dev):
    """What can change since the code was entered is checked again when it is approved."""
    from idp.extensions import db
    from idp.oauth.models import Client

    client = device_client(dev)
    body = started(dev.url, client)
    person = Person(dev.url)
    page = person.go(body["user_code"], dev.factory.gen_user(), decision=None)
    with dev.app.app_context():
        row = db.session.get(Client, client.client_id)
        row.grant_types = ["authorization_code"]
        db.session.commit()
    fields = hidden_inputs(page.text) | {"decision": "allow"}
    resp = person.http.post(page.url, data=fields, allow_redirects=False)
    assert "Device not connected" in resp.text
