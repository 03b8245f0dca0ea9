"""A real SAML 2.0 identity provider for the SAML connection tests: pysaml2's
``saml2.server.Server`` (the IdP side of the library idp's SP uses, signing and encrypting
with xmlsec1) behind a stdlib threaded HTTP server on a free loopback port.

Use the pytest fixture (module-scoped; ``tests/connections/conftest.py`` re-exports it,
other folders import it: ``from tests.connections.saml_idp import saml_idp  # noqa: F401``)::

    def test_x(saml_idp):
        options = saml_idp.options()                 # samlp options: metadata_url, pinned
        started = saml.begin(options, sp=SP, relay_state="uid.secret", force_authn=False,
                             settings=SETTINGS)
        fields = saml_idp.login(started, "alice")    # {"SAMLResponse": ..., "RelayState": ...}
        profile = saml.finish(options, sp=SP, saml_response=fields["SAMLResponse"], ...)

The API (stable, other tests rely on it):

- ``metadata_url``, ``metadata_xml``, ``entity_id``, ``fingerprint`` (SHA-256 of its signing
  certificate), ``certificate`` / ``private_key`` (PEM), ``base`` (its http://127.0.0.1:port);
- ``options(**extra)``: options of a ``samlp`` connection to this IdP with :data:`SP`'s key
  pair and the IdP's certificate pinned;
- ``register_sp(metadata_xml)``: trust one more SP (its ACS and certificate; :data:`SP` is
  registered at start). ``require_signed_requests``: refuse unsigned AuthnRequests;
- ``login(started, username, **knobs) -> dict[str, str]``: drives the IdP over HTTP from a
  :class:`Started` (a redirect URL or a POST form): its SSO endpoint checks the AuthnRequest
  (and its signature, when signed, against the SP's metadata), its login form takes the
  username, and the answer page's form fields for the ACS are returned, NOT posted;
- ``respond(request_id, username, **knobs) -> dict[str, str]``: ``{"SAMLResponse": ...}``
  built directly (attack tests); ``response_xml(...)`` the same as XML, to tamper with;
- ``metadata_fetches``: how many times ``/metadata`` was served;
- ``requests``: every AuthnRequest the SSO endpoint accepted, as ``{"id", "force_authn",
  "signed", "binding", "issuer", "acs"}`` (newest last).

Knobs (keyword arguments of ``login``/``respond``/``response_xml``): ``sign_response``
(False), ``sign_assertion`` (True), ``sign_alg`` / ``digest_alg`` (RSA-SHA256 / SHA-256;
``saml_idp.SHA1`` for SHA-1), ``encrypt`` (False: the assertion encrypted to the SP's
certificate), ``skew`` (seconds added to every time the IdP writes), ``lifetime`` (300 s),
``audience``, ``recipient``, ``destination`` (default: the SP's entity ID and ACS; ``None``
for destination drops the attribute), ``issuer``, ``in_response_to`` (default: the request's),
``status`` (a top-level status code such as ``RESPONDER``: an error response, no assertion),
``attributes`` (``plain``, ``adfs``, ``okta``, ``oid``), ``extra`` (more attributes),
``name_id``, ``sp`` (another :class:`Sp`), ``signing_key`` (another ``(key, cert)`` pair).

Users derive from the username: NameID the username (persistent), email the username when it
has an ``@`` else ``<username>@saml.test``, given name the local part capitalised, family
name ``Saml``, groups ``staff`` and ``team-<local part>``.
"""

from __future__ import annotations

import base64
import functools
import html
import secrets
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.utils import CryptographyDeprecationWarning
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

from idp.connections.saml import credentials, metadata
from idp.connections.saml.config import forget
from idp.connections.saml.contract import Settings, Sp, Started
from idp.core.http import parse_networks
from tests.connections.saml_response import Knobs, build_response

with warnings.catch_warnings():
    # pysaml2's IdP side names cryptography's CFB mode at import (deprecated in cryptography
    # 45); the SP side idp runs does not import it
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2.server import Server

SP = Sp(
    entity_id="https://rp.test/samlp/metadata/acme",
    acs_url="https://rp.test/login/callback/acme",
    slo_url="https://rp.test/samlp/logout/acme",
)
# idp's client may reach the loopback IdP (the guard refuses it otherwise).
SETTINGS = Settings(allowed_networks=parse_networks("127.0.0.0/8"), timeout=10.0)
SHA1 = {"sign_alg": SIG_RSA_SHA1, "digest_alg": DIGEST_SHA1}
SHA256 = {"sign_alg": SIG_RSA_SHA256, "digest_alg": DIGEST_SHA256}
XMLSEC = "/usr/bin/xmlsec1"


@functools.cache
def sp_credentials() -> tuple[str, str]:
    """:data:`SP`'s key and certificate (one pair per test session: RSA keys take time)."""
    return credentials.new_sp_credentials("acme")


class SamlLoginError(AssertionError):
    """The IdP's pages did not go as a login should (status, missing form...)."""


class _Forms(HTMLParser):
    """Every <form>'s action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.forms.append((found.get("action") or "", {}))
        elif tag == "input" and self.forms and found.get("name"):
            self.forms[-1][1][found["name"] or ""] = found.get("value") or ""


def _page_forms(text: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(text)
    return parser.forms


@dataclass
class SamlIdp:
    base: str
    server: Server
    private_key: str
    certificate: str
    directory: Path
    requests: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    sps: dict[str, Sp] = field(default_factory=dict)
    require_signed_requests: bool = False
    metadata_fetches: int = 0  # GET /metadata answered (caching tests)

    @property
    def entity_id(self) -> str:
        return f"{self.base}/metadata"

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/metadata"

    @property
    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.server.config))

    @property
    def fingerprint(self) -> str:
        return credentials.fingerprint(self.certificate)

    def options(self, **extra: Any) -> dict[str, Any]:
        key, certificate = sp_credentials()
        return {
            "metadata_url": self.metadata_url, "idp_certificates": [self.fingerprint],
            "sp_private_key": key, "sp_certificate": certificate, **extra,
        }  # fmt: skip

    def register_sp(self, metadata_xml: str) -> None:
        """Trust one more SP: its entity ID, ACS and certificate come from its metadata."""
        self.server.metadata.load("inline", metadata_xml)
        from saml2.md import entity_descriptor_from_string

        described = entity_descriptor_from_string(metadata_xml)
        descriptor = described.spsso_descriptor[0]
        acs = descriptor.assertion_consumer_service[0].location
        slo = descriptor.single_logout_service[0].location
        self.sps[described.entity_id] = Sp(described.entity_id, acs, slo)

    # --- the SSO endpoint and the login form ----------------------------------------------

    def accept_request(self, binding: str, fields: dict[str, str]) -> str:
        """Checks an AuthnRequest (SAML 2.0 Core §3.4.1) and returns the login ticket."""
        signed = "Signature" in fields or (
            binding == BINDING_HTTP_POST and b"Signature" in base64.b64decode(fields["SAMLRequest"])
        )
        if self.require_signed_requests and not signed:
            raise SamlLoginError("unsigned AuthnRequest")
        self.server.config.setattr("idp", "want_authn_requests_signed", signed)
        parsed = self.server.parse_authn_request(
            fields["SAMLRequest"],
            binding,
            relay_state=fields.get("RelayState"),
            sigalg=fields.get("SigAlg"),
            signature=fields.get("Signature"),
        )  # fmt: skip (raises when a signature does not verify)
        message = parsed.message
        issuer = message.issuer.text.strip()
        if issuer not in self.sps:
            raise SamlLoginError(f"unknown SP {issuer}")
        if message.assertion_consumer_service_url not in (None, self.sps[issuer].acs_url):
            raise SamlLoginError("AssertionConsumerServiceURL is not the SP's")
        record = {
            "id": message.id, "force_authn": message.force_authn in ("true", "1"),
            "signed": signed, "binding": binding, "issuer": issuer,
            "acs": self.sps[issuer].acs_url, "relay_state": fields.get("RelayState"),
        }  # fmt: skip
        self.requests.append(record)
        ticket = secrets.token_urlsafe(16)
        self.pending[ticket] = record
        return ticket

    def answer(self, ticket: str, username: str, knobs: dict[str, Any]) -> dict[str, str]:
        record = self.pending.pop(ticket)
        fields = self.respond(record["id"], username, sp=self.sps[record["issuer"]], **knobs)
        if record["relay_state"] is not None:
            fields["RelayState"] = record["relay_state"]
        return fields

    # --- responses -------------------------------------------------------------------------

    def response_xml(self, request_id: str | None, username: str, **knobs: Any) -> str:
        """The signed (encrypted...) ``<samlp:Response>`` the IdP would send, as XML."""
        sp = knobs.pop("sp", SP)
        key, cert = knobs.pop("signing_key", (self.private_key, self.certificate))
        return build_response(
            self.server, Knobs(**knobs), request_id=request_id, username=username, sp=sp,
            issuer=self.entity_id, key=key, cert=cert, sp_cert=sp_credentials()[1],
            directory=self.directory,
        )  # fmt: skip

    def respond(self, request_id: str | None, username: str, **knobs: Any) -> dict[str, str]:
        """``{"SAMLResponse": ...}`` as the HTTP-POST binding carries it (Bindings §3.5.4)."""
        xml = self.response_xml(request_id, username, **knobs)
        return {"SAMLResponse": base64.b64encode(xml.encode()).decode()}

    # --- a browser, over HTTP ---------------------------------------------------------------

    def login(self, started: Started, username: str, **knobs: Any) -> dict[str, str]:
        """From :func:`begin`'s answer to the fields the IdP posts to the ACS (not posted)."""
        browser = requests.Session()
        if started.form is not None:
            page = browser.post(started.url, data=started.form, timeout=10)
        else:
            page = browser.get(started.url, timeout=10)
        if page.status_code != 200:
            raise SamlLoginError(f"SSO endpoint: HTTP {page.status_code}: {page.text[:200]}")
        action, fields = _page_forms(page.text)[0]
        fields["username"] = username
        self.knobs_for[fields["ticket"]] = knobs
        answer = browser.post(self.base + action, data=fields, timeout=10)
        if answer.status_code != 200:
            raise SamlLoginError(f"login form: HTTP {answer.status_code}: {answer.text[:200]}")
        forms = _page_forms(answer.text)
        if not forms or "SAMLResponse" not in forms[0][1]:
            raise SamlLoginError("the answer page has no SAMLResponse form")
        return forms[0][1]

    knobs_for: dict[str, dict[str, Any]] = field(default_factory=dict)


def _handler(idp: SamlIdp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _send(self, status: int, body: str, kind: str = "text/html") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

        def _login_page(self, ticket: str) -> None:
            self._send(200, (
                '<form method="post" action="/login">'
                f'<input type="hidden" name="ticket" value="{html.escape(ticket)}">'
                '<input name="username"><button>Sign in</button></form>'
            ))  # fmt: skip

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/metadata":
                idp.metadata_fetches += 1
                self._send(200, idp.metadata_xml, "application/samlmetadata+xml")
            elif parts.path == "/sso/redirect":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._sso(BINDING_HTTP_REDIRECT, query)
            else:
                self._send(404, "not found")

        def do_POST(self) -> None:
            if self.path == "/sso/post":
                self._sso(BINDING_HTTP_POST, self._form())
            elif self.path == "/login":
                form = self._form()
                ticket = form.get("ticket", "")
                if ticket not in idp.pending or not form.get("username"):
                    return self._send(400, "unknown ticket")
                knobs = idp.knobs_for.pop(ticket, {})
                fields = idp.answer(ticket, form["username"], knobs)
                acs = idp.sps[idp.requests[-1]["issuer"]].acs_url
                inputs = "".join(
                    f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                    for k, v in fields.items()
                )
                # no script: the test reads the fields instead of posting them
                self._send(200, f'<form method="post" action="{html.escape(acs)}">{inputs}'
                                "<button>Continue</button></form>")  # fmt: skip
            else:
                self._send(404, "not found")

        def _sso(self, binding: str, fields: dict[str, str]) -> None:
            if "SAMLRequest" not in fields:
                return self._send(400, "no SAMLRequest")
            try:
                ticket = idp.accept_request(binding, fields)
            except Exception as exc:  # noqa: BLE001 - the page says why; the test reads it
                forget(exc)  # pysaml2's open temporary files, freed now rather than at a GC
                return self._send(400, f"refused: {type(exc).__name__}"[:300])
            self._login_page(ticket)

    return Handler


@functools.cache
def _idp_credentials() -> tuple[str, str]:
    return credentials.new_sp_credentials("saml-idp")


def start_idp() -> tuple[SamlIdp, ThreadingHTTPServer, tempfile.TemporaryDirectory[str]]:
    """A running IdP (stop it with ``httpd.shutdown()`` and the directory's cleanup)."""
    directory = tempfile.TemporaryDirectory(prefix="saml-idp-")
    path = Path(directory.name)
    key, cert = _idp_credentials()
    (path / "idp.key").write_text(key)
    (path / "idp.crt").write_text(cert)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    server = Server(config=_idp_config(base, path))
    idp = SamlIdp(base=base, server=server, private_key=key, certificate=cert, directory=path)
    idp.register_sp(metadata.sp_metadata({"sp_certificate": sp_credentials()[1]}, SP))
    httpd.RequestHandlerClass = _handler(idp)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return idp, httpd, directory


def _idp_config(base: str, path: Path) -> Any:
    from saml2.config import IdPConfig

    config = IdPConfig()
    config.load({
        "entityid": f"{base}/metadata",
        "xmlsec_binary": XMLSEC,
        "key_file": str(path / "idp.key"),
        "cert_file": str(path / "idp.crt"),
        "metadata": {},
        "service": {"idp": {
            "endpoints": {
                "single_sign_on_service": [
                    (f"{base}/sso/redirect", BINDING_HTTP_REDIRECT),
                    (f"{base}/sso/post", BINDING_HTTP_POST),
                ],
                "single_logout_service": [(f"{base}/slo/redirect", BINDING_HTTP_REDIRECT)],
            },
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "want_authn_requests_signed": False,
        }},
    })  # fmt: skip
    return config


@pytest.fixture(scope="module")
def saml_idp() -> Iterator[SamlIdp]:
    from idp.connections.saml import metadata as saml_metadata

    idp, httpd, directory = start_idp()
    try:
        yield idp
    finally:
        httpd.shutdown()
        httpd.server_close()
        directory.cleanup()
        saml_metadata.clear()
