"""The SAML bridge under attack (issue 13, "Tests"): every attack end to end over HTTP against
a live idp (``social_op``) and the tests' real pysaml2 IdP (``saml_idp``), each its own test.

Each attack starts from a genuine login (the application's ``/authorize`` with
``connection=``, idp's AuthnRequest accepted by the IdP) and a response the IdP genuinely
signed, tampered with as the attacker would (lxml keeps the signed bytes as they were), then
posted to idp's ACS the way the IdP's page would. The connection is as trusting as an operator
can make it (``email_verified`` and ``trust_email_verified``) and the victim,
``admin-...@corp.example``, has a verified account: a forged identity that got through would
be logged straight into it. None may log anyone in (no code for the evil identity, no
identity written, no login recorded), none may cause a 500; where a login fails, the
application gets ``access_denied`` with a safe description and the tenant log a
``connection.login_failure`` with its reason.

``test_the_harness_keeps_genuine_signatures`` is the control: the same tampering machinery
with nothing tampered logs in, so a refusal below is the attack's, not a broken harness's."""

# ruff: noqa: F811  (the fixtures social_op and saml_idp are imported)
from __future__ import annotations

import base64
import copy
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from sqlalchemy import func, select

from idp.audit import events
from idp.audit.models import LogEvent
from idp.connections import service as connections
from idp.connections.models import Connection, Identity, SeenAssertion
from idp.connections.saml import credentials
from idp.connections.saml import response as saml_checks
from idp.connections.saml.contract import Sp
from idp.core.crypto import sha256_hex
from idp.extensions import db, services
from idp.identity.models import User
from tests import factories
from tests.conftest import LiveServer
from tests.connections import saml_response
from tests.connections.saml_idp import SHA1, SamlIdp, saml_idp  # noqa: F401
from tests.connections.social import Arrival, SocialBrowser, social_op  # noqa: F401
from tests.helpers import jwt_parts

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


# --- the stage: a trusting connection, a victim, a login in progress ---------------------------


@dataclass
class Stage:
    op: LiveServer
    idp: SamlIdp
    client: factories.TestClient
    name: str
    victim: factories.TestUser  # admin-...@corp.example: verified, the account an attacker wants
    attacker: str  # the attacker's genuine account at the IdP (NameID and mail)


@dataclass
class Login:
    """One browser's login through the connection, up to the IdP's login form: the request
    idp sent (its ID), the RelayState that names the login, and this SP as the IdP knows it."""

    stage: Stage
    browser: SocialBrowser
    request_id: str
    relay: str
    sp: Sp

    def xml(self, username: str | None = None, **knobs: Any) -> str:
        """The IdP's genuinely signed answer to this login's request, as XML."""
        who = username or self.stage.attacker
        return self.stage.idp.response_xml(self.request_id, who, sp=self.sp, **knobs)

    def post(self, document: str | bytes, **fields: str) -> Arrival:
        """The IdP's page's POST to the ACS (base64 of ``document``), then idp's redirects."""
        data = document.encode() if isinstance(document, str) else document
        form = {"SAMLResponse": base64.b64encode(data).decode(), "RelayState": self.relay}
        return post_to_acs(self.browser, self.stage.name, {**form, **fields})


def post_to_acs(browser: SocialBrowser, name: str, fields: dict[str, str]) -> Arrival:
    url = f"{browser.op.url}/login/callback/{name}"
    return browser.follow(browser.http.post(url, data=fields, allow_redirects=False))


def connect(op: LiveServer, idp: SamlIdp, **options: Any) -> tuple[factories.TestClient, str]:
    """A samlp connection to the test IdP, enabled for a new application; the IdP's
    administrator loads idp's SP metadata (served over HTTP)."""
    client = op.factory.gen_client()
    name = "xsw-" + secrets.token_hex(4)
    with op.app.app_context():
        connections.create_connection(
            db.session, name=name, strategy="samlp", display_name=f"Corp {name}",
            options=idp.options(**options), box=services().box,
        )  # fmt: skip
        connections.enable(db.session, name, client.client_id)
        db.session.commit()
    metadata = requests.get(f"{op.url}/samlp/metadata/{name}", timeout=10)
    assert metadata.status_code == 200, metadata.text[:300]
    idp.register_sp(metadata.text)
    return client, name


@pytest.fixture
def stage(social_op: LiveServer, saml_idp: SamlIdp) -> Stage:
    op = social_op
    client, name = connect(op, saml_idp, email_verified=True, trust_email_verified=True)
    tag = secrets.token_hex(4)
    victim = op.factory.gen_user(email=f"admin-{tag}@corp.example", email_verified=True)
    return Stage(op, saml_idp, client, name, victim, f"mallory-{tag}@corp.example")


def begin(stage: Stage, browser: SocialBrowser | None = None) -> Login:
    """The application sends a browser to idp with ``connection=``; idp's AuthnRequest goes
    to the IdP (HTTP-Redirect binding), which accepts it: the request ID it will answer."""
    browser = browser or SocialBrowser(stage.op, stage.client)
    sent = browser.authorize(connection=stage.name)
    assert sent.location and sent.location.startswith(stage.idp.base), sent
    query = {k: v[0] for k, v in parse_qs(urlsplit(sent.location).query).items()}
    ticket = stage.idp.accept_request(BINDING_HTTP_REDIRECT, query)
    record = stage.idp.pending.pop(ticket)
    sp = stage.idp.sps[record["issuer"]]
    assert sp.acs_url == f"{stage.op.url}/login/callback/{stage.name}"
    return Login(stage, browser, record["id"], query["RelayState"], sp)


# --- what every attack must leave behind ---------------------------------------------------------


def failures(stage: Stage) -> list[dict[str, Any]]:
    with stage.op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == events.CONNECTION_LOGIN_FAILURE)
        )
        found = [dict(r.details or {}) for r in rows]
    return [f for f in found if f.get("connection") == stage.name]


def identities(stage: Stage) -> list[tuple[str, str]]:
    """(upstream user id, user id) of every identity of the connection."""
    with stage.op.app.app_context():
        rows = db.session.execute(
            select(Identity.upstream_user_id, Identity.user_id)
            .join(Connection, Connection.id == Identity.connection_id)
            .where(Connection.name == stage.name)
        )
        return [(row[0], row[1]) for row in rows]


def victim_identities(stage: Stage) -> list[str]:
    """The connections the victim has an identity of (only its password's, unless an attack
    got through)."""
    with stage.op.app.app_context():
        return [c.name for _, c in connections.identities_of(db.session, stage.victim.user_id)]


def logins(stage: Stage) -> int:
    with stage.op.app.app_context():
        rows = db.session.scalars(select(LogEvent).where(LogEvent.type == events.LOGIN_SUCCESS))
        return sum(1 for r in rows if (r.details or {}).get("connection") == stage.name)


def user_with(stage: Stage, email: str) -> str | None:
    with stage.op.app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def nobody_signed_in(stage: Stage, arrival: Arrival, evil: str | None = None) -> None:
    """No code, no 500, no identity of the connection (the evil one's included), no login
    through it, and the victim still has only its own."""
    assert arrival.code is None, f"an attack logged someone in: {arrival}"
    assert arrival.status != 500 and "Something went wrong" not in arrival.page
    assert identities(stage) == []
    assert logins(stage) == 0
    assert victim_identities(stage) == [connections.DATABASE]
    if evil is not None and evil != stage.victim.email:
        assert user_with(stage, evil) is None


def denied(stage: Stage, arrival: Arrival, reasons: set[str], evil: str | None = None) -> str:
    """``access_denied`` at the application's redirect URI with a safe description, and the
    tenant log's ``connection.login_failure`` with one of ``reasons``; returns that reason."""
    nobody_signed_in(stage, arrival, evil)
    assert arrival.location is not None, (arrival.status, arrival.page[:500])
    assert arrival.location.startswith(stage.client.redirect_uri), arrival.location
    assert arrival.params.get("error") == "access_denied", arrival.params
    description = arrival.params.get("error_description", "")
    assert description and "<" not in description and "admin" not in description
    assert "root:" not in description and "Traceback" not in description
    logged = failures(stage)
    assert len(logged) == 1, logged
    assert logged[0].get("reason") in reasons, logged
    assert "<" not in str(logged[0].get("detail", ""))  # never the document in the log
    return str(logged[0]["reason"])


def page(stage: Stage, arrival: Arrival, *texts: str) -> None:
    """A page of idp (no redirect to the application): the login cannot go on."""
    nobody_signed_in(stage, arrival)
    assert arrival.location is None, arrival
    assert 400 <= arrival.status < 500, (arrival.status, arrival.page[:300])
    assert any(text in arrival.page for text in texts), arrival.page[:500]


# --- tampering (lxml: the untouched parts keep their exact bytes) --------------------------------


def parse(xml: str) -> Any:
    return etree.fromstring(xml.encode())


def serialize(root: Any) -> bytes:
    return bytes(etree.tostring(root))


def signature(element: Any) -> Any:
    """The element's own enveloped ds:Signature (a direct child)."""
    found = element.find(_q(DS, "Signature"))
    assert found is not None, "the element is not signed"
    return found


def assertion(root: Any) -> Any:
    found = root.find(_q(SAML, "Assertion"))
    assert found is not None
    return found


def unsigned_copy(element: Any) -> Any:
    clone = copy.deepcopy(element)
    clone.remove(signature(clone))
    return clone


def make_evil(element: Any, evil: str) -> None:
    """The assertion (or the response's one assertion) now names ``evil``: its NameID and its
    mail attribute, read by path so that a copy nested in its Signature is left alone."""
    target = element if element.tag == _q(SAML, "Assertion") else assertion(element)
    name_id = target.find(f"{_q(SAML, 'Subject')}/{_q(SAML, 'NameID')}")
    name_id.text = evil
    for attribute in target.iterfind(f"{_q(SAML, 'AttributeStatement')}/{_q(SAML, 'Attribute')}"):
        if attribute.get("Name") == "mail":
            attribute.find(_q(SAML, "AttributeValue")).text = evil


# The eight shapes of Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be" (2012),
# as SAML Raider applies them (the evil element is the modified one; Extensions and Object
# get their schema namespaces here, which makes them only more plausible to a reader).


def xsw1(root: Any, evil: str) -> None:
    """The signed Response, unsigned, inside its own Signature; the root is the evil one."""
    original = unsigned_copy(root)
    make_evil(root, evil)
    signature(root).append(original)
    root.set("ID", "_evil_response")


def xsw2(root: Any, evil: str) -> None:
    """As XSW1, the signed Response before the (now detached) Signature."""
    original = unsigned_copy(root)
    make_evil(root, evil)
    signature(root).addprevious(original)
    root.set("ID", "_evil_response")


def xsw3(root: Any, evil: str) -> None:
    """An evil unsigned Assertion before the signed one."""
    signed = assertion(root)
    forged = unsigned_copy(signed)
    make_evil(forged, evil)
    forged.set("ID", "_evil_assertion")
    signed.addprevious(forged)


def xsw4(root: Any, evil: str) -> None:
    """The evil Assertion wraps the signed one."""
    signed = assertion(root)
    forged = unsigned_copy(signed)
    make_evil(forged, evil)
    forged.set("ID", "_evil_assertion")
    signed.addprevious(forged)
    forged.append(signed)  # moved: the signed assertion is now the forged one's child


def xsw5(root: Any, evil: str) -> None:
    """The signed Assertion made evil (new ID, its Signature kept); an unsigned copy of the
    original at the end of the Response."""
    signed = assertion(root)
    original = unsigned_copy(signed)
    root.append(original)
    make_evil(signed, evil)
    signed.set("ID", "_evil_assertion")


def xsw6(root: Any, evil: str) -> None:
    """As XSW5, the original copy inside the evil Assertion's Signature."""
    signed = assertion(root)
    original = unsigned_copy(signed)
    make_evil(signed, evil)
    signed.set("ID", "_evil_assertion")
    signature(signed).append(original)


def xsw7(root: Any, evil: str) -> None:
    """An evil unsigned copy (same ID) inside samlp:Extensions before the signed one."""
    signed = assertion(root)
    extensions = etree.Element(_q(SAMLP, "Extensions"))
    signed.addprevious(extensions)
    forged = unsigned_copy(signed)
    make_evil(forged, evil)
    extensions.append(forged)


def xsw8(root: Any, evil: str) -> None:
    """The signed Assertion made evil (same ID); the original, unsigned, in a ds:Object of
    its Signature, where a lax reference lookup would find it."""
    signed = assertion(root)
    original = unsigned_copy(signed)
    make_evil(signed, evil)
    holder = etree.SubElement(signature(signed), _q(DS, "Object"))
    holder.append(original)


WRAPPINGS: dict[str, tuple[Callable[[Any, str], None], dict[str, bool]]] = {
    "XSW1": (xsw1, {"sign_response": True, "sign_assertion": False}),
    "XSW2": (xsw2, {"sign_response": True, "sign_assertion": False}),
    "XSW3": (xsw3, {"sign_assertion": True}),
    "XSW4": (xsw4, {"sign_assertion": True}),
    "XSW5": (xsw5, {"sign_assertion": True}),
    "XSW6": (xsw6, {"sign_assertion": True}),
    "XSW7": (xsw7, {"sign_assertion": True}),
    "XSW8": (xsw8, {"sign_assertion": True}),
}


# --- the control ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signing", [{"sign_response": True, "sign_assertion": False}, {"sign_assertion": True}]
)
def test_the_harness_keeps_genuine_signatures(stage: Stage, signing: dict[str, bool]) -> None:
    """Parsed and serialized by lxml, untouched: the login goes through, for the attacker's
    own account (so every refusal below is caused by the attack)."""
    login = begin(stage)
    arrival = login.post(serialize(parse(login.xml(**signing))))
    assert arrival.code, (arrival.status, arrival.params, arrival.page[:500])
    sub = jwt_parts(login.browser.tokens(arrival)["id_token"])[1]["sub"]
    assert sub == user_with(stage, stage.attacker) and sub != stage.victim.user_id
    assert identities(stage) == [(stage.attacker, sub)]


# --- XML signature wrapping ---------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["idp", "pysaml2-alone"])
@pytest.mark.parametrize("shape", sorted(WRAPPINGS))
def test_xml_signature_wrapping(
    stage: Stage, shape: str, layer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused by idp's own checks of the document (exactly one assertion, unique IDs), and,
    with those switched off in the server (``pysaml2-alone``), by pysaml2 and xmlsec1 and
    idp's checks of what they verified: a regression in either layer alone is caught."""
    if layer == "pysaml2-alone":
        monkeypatch.setattr(saml_checks, "unique_ids", lambda *args: None)
        monkeypatch.setattr(
            saml_checks, "count", lambda root, namespace, name: int(name == "Assertion")
        )
    wrap, signing = WRAPPINGS[shape]
    login = begin(stage)
    root = parse(login.xml(**signing))
    wrap(root, stage.victim.email)
    document = serialize(root)
    # the attack is the one intended: the victim named, the genuine assertion still there
    assert stage.victim.email.encode() in document and stage.attacker.encode() in document
    arrival = login.post(document)
    reason = denied(stage, arrival, {"bad_response", "bad_signature"}, stage.victim.email)
    if layer == "idp":
        assert reason == "bad_response"
        detail = failures(stage)[0]["detail"]
        assert "signature wrapping" in detail or "not exactly 1" in detail, detail


# --- signatures -------------------------------------------------------------------------------


def test_an_unsigned_assertion(stage: Stage) -> None:
    login = begin(stage)
    xml = login.xml(stage.victim.email, sign_assertion=False, sign_response=False)
    assert "Signature" not in xml
    denied(stage, login.post(xml), {"bad_signature"}, stage.victim.email)


@pytest.fixture(scope="module")
def attacker_key() -> tuple[str, str]:
    return credentials.new_sp_credentials("attacker")


@pytest.mark.parametrize(
    "signing",
    [{"sign_assertion": True}, {"sign_assertion": False, "sign_response": True}],
    ids=["assertion", "response"],
)
def test_a_signature_by_another_certificate(
    stage: Stage, attacker_key: tuple[str, str], signing: dict[str, bool]
) -> None:
    """Signed by the attacker's own key, its certificate in KeyInfo: only the pinned one
    counts (xmlsec1 must not trust the document's KeyInfo)."""
    login = begin(stage)
    xml = login.xml(stage.victim.email, signing_key=attacker_key, **signing)
    assert credentials.bare(attacker_key[1])[:64] in xml  # the attacker's certificate offered
    arrival = login.post(xml)
    denied(stage, arrival, {"bad_signature", "certificate_not_pinned"}, stage.victim.email)


def test_sha1_while_allow_sha1_is_off(stage: Stage) -> None:
    login = begin(stage)
    arrival = login.post(login.xml(stage.victim.email, **SHA1))
    assert denied(stage, arrival, {"weak_signature"}, stage.victim.email)


# --- the comment in the NameID (the canonicalization bug class) ---------------------------------


def test_a_comment_in_the_name_id_does_not_cut_it(stage: Stage) -> None:
    """The attacker owns ``admin-...@corp.example.evil`` at the IdP and gets it signed; a
    comment added after ``@corp.example`` keeps the signature valid (exclusive C14N drops
    comments), and a reader of the first text node would see the victim's address. idp must
    read the whole text: the attacker signs in as ``....evil``, never as the victim."""
    evil_own = stage.victim.email + ".evil"
    login = begin(stage)
    root = parse(login.xml(evil_own))
    signed = assertion(root)
    name_id = signed.find(f"{_q(SAML, 'Subject')}/{_q(SAML, 'NameID')}")
    values = [
        a.find(_q(SAML, "AttributeValue"))
        for a in signed.iterfind(f"{_q(SAML, 'AttributeStatement')}/{_q(SAML, 'Attribute')}")
        if a.get("Name") == "mail"
    ]
    for element in [name_id, *values]:
        assert element.text == evil_own
        element.text = stage.victim.email
        comment = etree.Comment("")
        element.append(comment)
        comment.tail = ".evil"
    document = serialize(root)
    assert f"{stage.victim.email}<!---->.evil".encode() in document
    arrival = login.post(document)
    assert arrival.status != 500
    assert victim_identities(stage) == [connections.DATABASE]
    assert all(upstream != stage.victim.email for upstream, _ in identities(stage))
    if arrival.code is None:  # refusing the document is safe too
        denied(stage, arrival, {"bad_response", "bad_signature", "bad_xml"})
        return
    sub = jwt_parts(login.browser.tokens(arrival)["id_token"])[1]["sub"]
    assert sub != stage.victim.user_id
    assert identities(stage) == [(evil_own, sub)]
    assert user_with(stage, evil_own) == sub


# --- replay ------------------------------------------------------------------------------------


def test_a_replayed_response(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A response is good once. Posted again into its own login after it was used, the login
    is gone (a page). Its assertion, signed again by the IdP with the same ID for another
    login of the same browser (a replay that the InResponseTo check cannot catch), is
    refused by the assertion-ID cache every worker shares."""
    login = begin(stage)
    xml = login.xml()
    assertion_id = assertion(parse(xml)).get("ID")
    first = login.post(xml)
    assert first.code  # accepted once
    with stage.op.app.app_context():
        seen = db.session.scalar(
            select(func.count()).select_from(SeenAssertion)
            .where(SeenAssertion.id_hash == sha256_hex(assertion_id))
        )  # fmt: skip
    assert seen == 1
    again = login.post(xml)
    assert again.code is None and again.status != 500
    assert again.location is None and again.status == 400, again
    # the same assertion ID in a response to a new request
    second = begin(stage, SocialBrowser(stage.op, stage.client))
    minted = iter([None, assertion_id])  # build_response: the Response's ID, then the Assertion's
    fresh = saml_response._new_id

    def same_id() -> str:
        return next(minted, None) or fresh()

    monkeypatch.setattr(saml_response, "_new_id", same_id)
    replayed = second.xml()
    monkeypatch.undo()
    assert assertion(parse(replayed)).get("ID") == assertion_id
    arrival = second.post(replayed)
    assert arrival.code is None and arrival.status != 500
    assert arrival.params.get("error") == "access_denied", arrival
    assert [f.get("reason") for f in failures(stage)] == ["replayed"]
    assert logins(stage) == 1  # only the genuine first login


# --- the response's own conditions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "reasons"),
    [
        ({"skew": -3600}, {"expired"}),
        ({"audience": "https://other-sp.test/samlp/metadata/acme"}, {"wrong_audience"}),
        ({"recipient": "https://other-sp.test/login/callback/acme"}, {"wrong_recipient"}),
        ({"destination": "https://other-sp.test/login/callback/acme"}, {"wrong_destination"}),
    ],
    ids=["expired", "another-audience", "another-recipient", "another-destination"],
)
def test_a_response_for_another_time_or_place(
    stage: Stage, knobs: dict[str, Any], reasons: set[str]
) -> None:
    """Genuinely signed for the victim's own IdP account, but not for here and now."""
    login = begin(stage)
    arrival = login.post(login.xml(stage.victim.email, **knobs))
    denied(stage, arrival, reasons, stage.victim.email)


def test_an_unsolicited_response_while_idp_initiated_is_off(stage: Stage) -> None:
    """No InResponseTo: without a RelayState it names no login (a page); with this browser's
    it does not answer that login's request."""
    unsolicited = stage.idp.response_xml(None, stage.victim.email, sp=begin(stage).sp)
    assert "InResponseTo" not in unsolicited
    browser = SocialBrowser(stage.op, stage.client)
    fields = {"SAMLResponse": base64.b64encode(unsolicited.encode()).decode()}
    page(stage, post_to_acs(browser, stage.name, fields), "cannot be completed")
    assert failures(stage) == []
    login = begin(stage)
    arrival = login.post(unsolicited)
    denied(stage, arrival, {"in_response_to_mismatch", "unsolicited"}, stage.victim.email)


def test_a_response_for_another_browsers_request(stage: Stage) -> None:
    """Browser A's genuine answer (its RelayState and InResponseTo) posted by browser B, with
    no login of its own or with one in progress: B's interaction cookie finds nothing."""
    a = begin(stage)
    xml = a.xml()
    for b in (SocialBrowser(stage.op, stage.client), begin(stage).browser):
        fields = {"SAMLResponse": base64.b64encode(xml.encode()).decode(), "RelayState": a.relay}
        arrival = post_to_acs(b, stage.name, fields)
        page(stage, arrival, "expired", "no longer valid", "cannot be completed")
    # a RelayState whose secret is not the login's
    uid = a.relay.split(".")[0]
    forged = post_to_acs(
        SocialBrowser(stage.op, stage.client), stage.name,
        {"SAMLResponse": base64.b64encode(xml.encode()).decode(), "RelayState": f"{uid}.guess"},
    )  # fmt: skip
    page(stage, forged, "cannot be completed")


# --- hostile XML -------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[list[str]]:
    """A loopback HTTP server recording what it is asked for: an external entity or DTD that
    is fetched shows here."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            body = b'<!ENTITY % x "y">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hits.append(f"http://127.0.0.1:{httpd.server_address[1]}")  # [0]: its base URL
    try:
        yield hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def _with_doctype(xml: str, doctype: str, entity: str) -> str:
    """The genuine signed response with a DOCTYPE and ``entity`` referenced in its NameID."""
    body = xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml
    marker = "admin-"
    assert marker in body
    return '<?xml version="1.0"?>' + doctype + body.replace(marker, entity + marker, 1)


XXE = [
    ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
    ('<!DOCTYPE r [<!ENTITY x SYSTEM "{base}/entity">]>', "&x;"),
    ('<!DOCTYPE r [<!ENTITY % p SYSTEM "{base}/parameter"> %p;]>', ""),
    ('<!DOCTYPE r SYSTEM "{base}/dtd">', ""),
]


@pytest.mark.parametrize(
    ("doctype", "reference"), XXE, ids=["file", "http-entity", "parameter-entity", "external-dtd"]
)
def test_xxe(stage: Stage, listener: list[str], doctype: str, reference: str) -> None:
    login = begin(stage)
    document = _with_doctype(
        login.xml(stage.victim.email), doctype.replace("{base}", listener[0]), reference
    )
    arrival = login.post(document)
    denied(stage, arrival, {"bad_xml"}, stage.victim.email)
    assert listener[1:] == []  # nothing was fetched, by idp, pysaml2 or xmlsec1


def test_billion_laughs(stage: Stage) -> None:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    login = begin(stage)
    document = _with_doctype(login.xml(stage.victim.email), f"<!DOCTYPE r [{entities}]>", "&l9;")
    arrival = login.post(document)
    denied(stage, arrival, {"bad_xml"}, stage.victim.email)


def test_a_5_mb_saml_response(stage: Stage) -> None:
    """Larger than the body limit: refused before it is read (413), a page, not a 500; the
    login it names is untouched and nobody is signed in."""
    login = begin(stage)
    huge = base64.b64encode(b"<" * (5 * 1024 * 1024)).decode()
    resp = login.browser.http.post(
        f"{stage.op.url}/login/callback/{stage.name}",
        data={"SAMLResponse": huge, "RelayState": login.relay},
        allow_redirects=False,
    )
    assert resp.status_code == 413, (resp.status_code, resp.text[:300])
    assert "Something went wrong" not in resp.text
    nobody_signed_in(stage, Arrival(resp.status_code, page=resp.text))
    # the same login still ends only with a genuine answer: here, a refusal of a bad one
    arrival = login.post(login.xml(stage.victim.email, sign_assertion=False))
    denied(stage, arrival, {"bad_signature"}, stage.victim.email)
