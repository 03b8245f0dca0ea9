"""SAML logins, end to end over HTTP (the tests' pysaml2 IdP, a live idp): the query-string
spellings of the SP's URLs (Auth0's ``/samlp/metadata?connection=NAME`` and
``/login/callback?connection=NAME``), ``ForceAuthn`` from ``max_age``, and the MFA step
between the SAML login and the code."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import requests
from sqlalchemy import select

from idp.audit import events
from idp.audit.models import LogEvent
from idp.connections.upstream.contract import Started
from idp.extensions import db
from idp.oauth.models import Client
from tests.conftest import LiveServer
from tests.connections.saml_idp import SamlIdp
from tests.connections.social import Arrival, SocialBrowser
from tests.connections.test_saml_login import _connect, _login
from tests.helpers import hidden_inputs, jwt_parts


def _started(op: LiveServer, client: Any, name: str, **extra: str) -> tuple[SocialBrowser, str]:
    """A login sent to the IdP: the browser and the AuthnRequest's redirect URL."""
    browser = SocialBrowser(op, client)
    sent = browser.authorize(connection=name, **extra)
    assert sent.location and sent.location.startswith("http://127.0.0.1"), sent
    return browser, sent.location


def _post(browser: SocialBrowser, url: str, fields: dict[str, str]) -> Arrival:
    return browser.follow(browser.http.post(url, data=fields, allow_redirects=False))


def _failures(op: LiveServer, name: str) -> list[str]:
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == events.CONNECTION_LOGIN_FAILURE)
        )
        return [str(r.details.get("reason")) for r in rows if r.details.get("connection") == name]


def test_the_metadata_is_served_at_the_query_form_too(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    name = _connect(op, saml_idp, op.factory.gen_client())
    by_path = requests.get(f"{op.url}/samlp/metadata/{name}", timeout=10)
    by_query = requests.get(f"{op.url}/samlp/metadata", params={"connection": name}, timeout=10)
    assert by_query.status_code == 200
    assert by_query.headers["Content-Type"].startswith("application/samlmetadata+xml")
    # one SP: the same entity ID and the one ACS, whichever spelling fetched it
    assert by_query.text == by_path.text
    assert f'entityID="{op.url}/samlp/metadata/{name}"' in by_query.text
    assert f'Location="{op.url}/login/callback/{name}"' in by_query.text
    assert "?connection=" not in by_query.text
    for params in ({}, {"connection": ""}, {"connection": "no-such-connection"}):
        missing = requests.get(f"{op.url}/samlp/metadata", params=params, timeout=10)
        assert missing.status_code == 404


def test_the_acs_answers_at_the_query_form(social_op: LiveServer, saml_idp: SamlIdp) -> None:
    """An IdP posting to ``/login/callback?connection=NAME`` with the advertised ACS as
    Destination and Recipient logs the user in like the path form."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    browser, location = _started(op, client, name)
    fields = saml_idp.login(Started(url=location, kept={}), "quinn")
    arrival = _post(browser, f"{op.url}/login/callback?connection={name}", fields)
    assert jwt_parts(browser.tokens(arrival)["id_token"])[1]["sub"].startswith("usr_")
    # and without a connection: nothing to answer
    nobody = requests.post(f"{op.url}/login/callback", data=fields, allow_redirects=False)
    assert nobody.status_code == 404


def test_destination_and_recipient_must_be_the_advertised_acs(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    """The query spelling is served, not advertised: a response naming it as its Destination
    or its Recipient is refused, wherever it is posted (one ACS URL, compared exactly)."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    query_acs = f"{op.url}/login/callback?connection={name}"
    for knob, reason in (("destination", "wrong_destination"), ("recipient", "wrong_recipient")):
        browser, location = _started(op, client, name)
        fields = saml_idp.login(
            Started(url=location, kept={}), "rita", sign_response=True, **{knob: query_acs}
        )
        arrival = _post(browser, query_acs, fields)
        assert arrival.code is None and arrival.params.get("error") == "access_denied", arrival
        assert _failures(op, name)[-1] == reason


def test_max_age_sends_force_authn(social_op: LiveServer, saml_idp: SamlIdp) -> None:
    """SAML 2.0 Core §3.4.1: an app's ``max_age`` (OIDC Core §3.1.2.1) asks the IdP to
    authenticate again, as ``prompt=login`` does (the redirect binding, the default here)."""
    op = social_op
    client = op.factory.gen_client()
    name = _connect(op, saml_idp, client)
    browser, arrival, _ = _login(op, saml_idp, client, name, "sam", max_age="0")
    assert saml_idp.requests[-1]["force_authn"] is True
    assert saml_idp.requests[-1]["binding"].endswith("HTTP-Redirect")
    assert browser.tokens(arrival)
    # the control: the same login without max_age asks for no fresh authentication
    _browser, arrival, _ = _login(op, saml_idp, client, name, "sam")
    assert arrival.code and saml_idp.requests[-1]["force_authn"] is False


def _mfa_post(browser: SocialBrowser, page: str, fields: dict[str, str]) -> requests.Response:
    action = re.search(r'action="(/interaction/[^/]+/mfa)"', page)
    assert action, page[:300]
    data = {"csrf_token": hidden_inputs(page)["csrf_token"], **fields}
    return browser.http.post(browser.op.url + action.group(1), data=data, allow_redirects=False)


def test_a_saml_login_stops_at_the_second_factor(
    social_op: LiveServer, saml_idp: SamlIdp, clock: Any
) -> None:
    """An app that requires MFA (``mfa_policy: always``): the SAML login ends on idp's MFA
    page, not at the app; the code comes only after the second factor (enrolment on the first
    login, the challenge on the next), and the tokens say both were used."""
    op = social_op
    client = op.factory.gen_client()
    with op.app.app_context():
        row = db.session.get(Client, client.client_id)
        assert row is not None
        row.mfa_policy = "always"
        db.session.commit()
    name = _connect(op, saml_idp, client, email_verified=True)

    browser, arrival, _ = _login(op, saml_idp, client, name, "tess")
    assert arrival.code is None and arrival.location is None, arrival
    assert arrival.status == 200 and "Set up a second step" in arrival.page
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', arrival.page)
    assert secret, arrival.page[:500]
    code = pyotp.TOTP(secret.group(1)).now()
    factor_id = hidden_inputs(arrival.page)["factor_id"]
    saved = _mfa_post(browser, arrival.page, {"action": "enroll_totp", "factor_id": factor_id,
                                              "code": code})  # fmt: skip
    assert saved.status_code == 200, saved.text[:300]
    done = browser.follow(_mfa_post(browser, saved.text, {"action": "continue"}))
    claims = jwt_parts(browser.tokens(done)["id_token"])[1]
    assert "mfa" in claims["amr"] and "federated" in claims["amr"]

    # the next SAML login of the same user: the challenge, then the code
    again, arrival, _ = _login(op, saml_idp, client, name, "tess")
    assert arrival.code is None and "Code from your authenticator app" in arrival.page
    wrong = _mfa_post(again, arrival.page, {"action": "totp", "code": "000000"})
    assert wrong.status_code == 401  # still no code
    clock.advance(31)  # the enrolment's code is spent: the next time step's
    answer = pyotp.TOTP(secret.group(1)).at(clock.now())
    done = again.follow(_mfa_post(again, wrong.text, {"action": "totp", "code": answer}))
    assert jwt_parts(again.tokens(done)["id_token"])[1]["sub"] == claims["sub"]
