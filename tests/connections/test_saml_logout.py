"""SAML single logout over HTTP against the live idp and the tests' pysaml2 IdP: the IdP's
signed LogoutRequest ends the idp sessions that came through it (an unsigned one ends
nothing), and idp's RP-initiated logout sends the IdP a signed LogoutRequest."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import NameID
from saml2.xmldsig import SIG_RSA_SHA256

from idp.backchannel import delivery
from idp.backchannel import service as backchannel
from idp.connections import service as connections
from idp.extensions import db
from idp.oauth import service as oauth
from tests.conformance._loopback import Site
from tests.conformance.test_backchannel_logout import verify
from tests.conftest import LiveServer
from tests.connections.saml_idp import SamlIdp
from tests.connections.social import SocialBrowser
from tests.connections.test_saml_login import _connect, _login
from tests.helpers import jwt_parts


def _signed_in(
    op: LiveServer, idp: SamlIdp, username: str
) -> tuple[Any, str, SocialBrowser, dict[str, Any]]:
    client = op.factory.gen_client()
    name = _connect(op, idp, client)
    browser, arrival, _ = _login(op, idp, client, name, username)
    tokens = browser.tokens(arrival)
    sub = jwt_parts(tokens["id_token"])[1]["sub"]
    with op.app.app_context():
        ((identity, _),) = connections.identities_of(db.session, sub)
        profile = dict(identity.profile)
    return client, name, browser, {**profile, "id_token": tokens["id_token"]}


def _idp_logout_url(
    op: LiveServer, idp: SamlIdp, name: str, login: dict[str, Any], sign: bool
) -> str:
    slo = f"{op.url}/samlp/logout/{name}"
    _, request = idp.server.create_logout_request(
        slo, f"{op.url}/samlp/metadata/{name}",
        name_id=NameID(text=login["name_id"], format=login["name_id_format"]),
        session_indexes=[login["session_index"]] if login.get("session_index") else None,
        sign=False,
    )  # fmt: skip
    http = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), slo, "idp-relay", sign=sign, sigalg=SIG_RSA_SHA256
    )
    return str(dict(http["headers"])["Location"])


def _still_signed_in(browser: SocialBrowser) -> bool:
    return browser.authorize(prompt="none").code is not None


def test_the_idps_signed_logout_request_ends_the_session(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client, name, browser, login = _signed_in(op, saml_idp, "hank")
    answer = browser.http.get(_idp_logout_url(op, saml_idp, name, login, sign=True),
                              allow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text[:300]
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}" == saml_idp.base
    query = parse_qs(back.query)
    assert "SAMLResponse" in query and "Signature" in query and query["RelayState"] == ["idp-relay"]
    again = SocialBrowser(op, client)
    again.http = browser.http
    assert not _still_signed_in(again)


def test_an_unsigned_logout_request_ends_nothing(social_op: LiveServer, saml_idp: SamlIdp) -> None:
    op = social_op
    client, name, browser, login = _signed_in(op, saml_idp, "ivy")
    url = _idp_logout_url(op, saml_idp, name, login, sign=False)
    answer = browser.http.get(url, allow_redirects=False)
    assert answer.status_code == 400
    again = SocialBrowser(op, client)
    again.http = browser.http
    assert _still_signed_in(again)
    # a forged signature does no better
    forged = url + "&SigAlg=" + SIG_RSA_SHA256 + "&Signature=AAAA"
    assert browser.http.get(forged, allow_redirects=False).status_code == 400
    assert _still_signed_in(again)


def test_rp_initiated_logout_sends_a_signed_logout_request_to_the_idp(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    op = social_op
    client, name, browser, login = _signed_in(op, saml_idp, "jack")
    out = browser.http.get(
        f"{op.url}/oidc/logout", params={"id_token_hint": login["id_token"]},
        allow_redirects=False,
    )  # fmt: skip
    assert out.status_code == 303
    sent = urlsplit(out.headers["Location"])
    assert f"{sent.scheme}://{sent.netloc}{sent.path}" == f"{saml_idp.base}/slo/redirect"
    query = {k: v[0] for k, v in parse_qs(sent.query).items()}
    assert query.get("SigAlg") == SIG_RSA_SHA256 and query.get("Signature")
    parsed = saml_idp.server.parse_logout_request(
        query["SAMLRequest"],
        BINDING_HTTP_REDIRECT,
        relay_state=query["RelayState"],
        sigalg=query["SigAlg"],
        signature=query["Signature"],
    )  # fmt: skip (the IdP checks idp's signature against the SP metadata it loaded)
    assert parsed.message.name_id.text == login["name_id"]
    again = SocialBrowser(op, client)
    again.http = browser.http
    assert not _still_signed_in(again)  # idp's session ended before the IdP was asked
    # the IdP's answer comes back to the SLO URL: the logout page
    done = browser.http.get(
        f"{op.url}/samlp/logout/{name}",
        params={"SAMLResponse": "eA==", "RelayState": query["RelayState"]},
        allow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 200 and "signed out" in done.text.lower()


def test_the_idps_logout_request_sends_back_channel_logouts(
    social_op: LiveServer, saml_idp: SamlIdp
) -> None:
    """OIDC Back-Channel Logout §2.5: the sessions the IdP's single logout ends are ended as
    any other, so the clients that got ID tokens in them get a Logout Token."""
    op, site = social_op, Site().start()
    client, name, browser, login = _signed_in(op, saml_idp, "kim")
    claims = jwt_parts(login["id_token"])[1]
    with op.app.app_context():
        backchannel.configure(oauth.get_client(db.session, client.client_id), f"{site.base}/bcl")
        db.session.commit()
    answer = browser.http.get(_idp_logout_url(op, saml_idp, name, login, sign=True),
                              allow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text[:300]
    saved = op.app.config["BACKCHANNEL_LOGOUT_ALLOW_NETWORKS"]
    op.app.config["BACKCHANNEL_LOGOUT_ALLOW_NETWORKS"] = "127.0.0.0/8"  # the receiver's
    try:
        loop = delivery.Delivery(op.app)  # no loop runs here: one pass, in this thread
    finally:
        op.app.config["BACKCHANNEL_LOGOUT_ALLOW_NETWORKS"] = saved
    try:
        assert loop.run_once() == 1
        [(path, _headers, form)] = site.posts
    finally:
        site.stop()
    logout = verify(op, form["logout_token"][0], client.client_id)
    assert path == "/bcl" and (logout["sid"], logout["sub"]) == (claims["sid"], claims["sub"])
