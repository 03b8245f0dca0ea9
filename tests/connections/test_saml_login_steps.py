"""SAML logins, end to end over HTTP (the tests' pysaml2 IdP, a live idp): the query-string
spellings of the SP's URLs (Auth0's ``/samlp/metadata?connection=NAME`` and
``/login/callback?connection=NAME``) and ``ForceAuthn`` from ``max_age``."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import select

from idp.audit import events
from idp.audit.models import LogEvent
from idp.connections.upstream.contract import Started
from idp.extensions import db
from tests.conftest import LiveServer
from tests.connections.saml_idp import SamlIdp
from tests.connections.social import Arrival, SocialBrowser
from tests.connections.test_saml_login import _connect, _login
from tests.helpers import jwt_parts


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
