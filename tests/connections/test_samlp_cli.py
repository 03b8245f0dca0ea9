"""``idp connections`` with ``--strategy samlp`` (issue 13, "Operators"): a SAML connection
created from a metadata file and from a metadata URL (served by a loopback HTTP server here),
the IdP's signing certificates pinned or the operator's ``--fingerprint`` checked against the
metadata, the SP's key generated, sealed at rest and never printed, ``show`` printing what the
IdP's operator registers, ``rotate-certificate``, updates, and one-line refusals.

The IdP metadata is written here (a minimal EntityDescriptor, SAML 2.0 Metadata §2.4.3, with a
self-signed certificate) and its fingerprints computed with hashlib, not with idp's code."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from idp.cli import main
from idp.connections import service as connections
from idp.connections import strategies
from idp.connections.saml import credentials
from idp.core.errors import ValidationError
from idp.extensions import db, services
from tests.conftest import TEST_DB_URL, LiveServer
from tests.connections.test_connections_cli import stored
from tests.ports import free_port

PRIVATE = "PRIVATE KEY"  # no output may carry a private key (nor a sealed one)


# ------------------------------------------------------------------ an IdP's metadata
@dataclass(frozen=True)
class IdpCert:
    pem: str
    b64: str  # metadata's X509Certificate: base64 DER
    sha256: str  # lowercase hex, what idp pins


def idp_cert(cn: str = "idp.test") -> IdpCert:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return IdpCert(pem, base64.b64encode(der).decode(), hashlib.sha256(der).hexdigest())


def metadata(*signing: IdpCert, encryption: IdpCert | None = None) -> str:
    """An IdP's metadata: entity ID, SSO over HTTP-Redirect and HTTP-POST, and a KeyDescriptor
    per certificate (``use="signing"``; ``encryption`` adds one that signs nothing)."""
    keys = [("signing", c) for c in signing] + ([("encryption", encryption)] if encryption else [])
    descriptors = "".join(
        f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{c.b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for use, c in keys
    )
    return (
        '<?xml version="1.0"?>\n<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:'
        'metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.test/s">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{descriptors}"
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://idp.test/sso"/>'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        'Location="https://idp.test/sso"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>\n"
    )


@dataclass
class MetadataServer:
    """Loopback HTTP: ``pages[path] = (status, body)``."""

    base: str
    pages: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def serve(self, path: str, body: str, status: int = 200) -> str:
        self.pages[path] = (status, body.encode())
        return self.base + path


@contextmanager
def serving_metadata() -> Iterator[MetadataServer]:
    """A loopback HTTP server in a thread, answering ``pages``; stopped afterwards."""
    site = MetadataServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = site.pages.get(self.path, (404, b"not here"))
            self.send_response(status)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def metadata_server() -> Iterator[MetadataServer]:
    with serving_metadata() as site:
        yield site


# ------------------------------------------------------------------ the CLI
def _runner() -> CliRunner:
    """The CLI as an operator runs it, allowed to reach a loopback IdP (as the server is)."""
    env = {"IDP_CONNECTIONS_ALLOW_NETWORKS": "127.0.0.0/8", "IDP_CONNECTIONS_HTTP_TIMEOUT": "2"}
    return CliRunner(env={**env, **({"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})})


def run(op: LiveServer, *args: str, as_json: bool = True) -> str:
    argv = ["--instance", op.app.instance_path, *(["--json"] if as_json else []), *args]
    result = _runner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert PRIVATE not in result.output and strategies.SEALED not in result.output
    return str(result.output)


def fails(op: Any, *args: str) -> str:
    """A refusal: one line, a non-zero exit, no traceback and no key."""
    result = _runner().invoke(main, ["--instance", op.app.instance_path, *args])
    assert result.exit_code != 0, result.output
    out = str(result.output)
    assert out.startswith("Error: ") and out.count("\n") == 1, out
    assert "Traceback" not in out and PRIVATE not in out
    return out


def public_key(pem: str) -> bytes:
    """The public half, whether from a certificate or from a private key."""
    if "CERTIFICATE" in pem:
        key: Any = x509.load_pem_x509_certificate(pem.encode()).public_key()
    else:
        key = serialization.load_pem_private_key(pem.encode(), None).public_key()
    return bytes(key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip


def sha256_pem(pem: str) -> str:
    return hashlib.sha256(x509.load_pem_x509_certificate(pem.encode()).public_bytes(
        serialization.Encoding.DER)).hexdigest()  # fmt: skip


@pytest.fixture
def op(social_op: LiveServer) -> LiveServer:
    return social_op


@pytest.fixture
def cert() -> IdpCert:
    return idp_cert()


def test_create_from_a_metadata_file(op: LiveServer, cert: IdpCert, tmp_path: Any) -> None:
    other = idp_cert("other")  # an encryption-only key is not pinned: it signs nothing
    (tmp_path / "idp.xml").write_text(metadata(cert, encryption=other))
    made = json.loads(run(
        op, "connections", "create", "--strategy", "samlp", "--name", "acme",
        "--metadata-file", str(tmp_path / "idp.xml"), "--domain", "acme.test",
        "--domain", "acme.example", "--sign-requests", "--allow-sha1", "--email-verified",
        "--map", "email=mail", "--request-binding", "post", "--display-name", "Acme",
    ))  # fmt: skip
    options = made["options"]
    assert options["idp_certificates"] == [cert.sha256]  # pinned from the metadata
    assert options["domains"] == ["acme.test", "acme.example"] and options["map"] == {
        "email": "mail"}  # fmt: skip
    assert options["sign_requests"] and options["allow_sha1"] and options["email_verified"]
    assert options["request_binding"] == "post" and "metadata_url" not in options
    assert options["sp_private_key"] == "(set)"  # write-only
    sp = made["sp"]
    issuer = made["redirect_uri"].removesuffix("/login/callback/acme")
    assert sp == {
        "entity_id": f"{issuer}/samlp/metadata/acme", "metadata_url": f"{issuer}/samlp/metadata/acme",
        "acs_url": f"{issuer}/login/callback/acme", "slo_url": f"{issuer}/samlp/logout/acme",
        "certificate_fingerprint": sha256_pem(options["sp_certificate"]),
    }  # fmt: skip
    raw, opened = stored(op, "acme")
    assert PRIVATE not in raw and strategies.SEALED in raw  # sealed at rest
    assert public_key(opened["sp_private_key"]) == public_key(options["sp_certificate"])
    assert json.loads(run(op, "connections", "show", "acme")) == made


def test_show_prints_what_the_idp_registers(op: LiveServer, cert: IdpCert, tmp_path: Any) -> None:
    (tmp_path / "idp.xml").write_text(metadata(cert))
    made = json.loads(run(op, "connections", "create", "--strategy", "samlp", "--name",
                          "shown", "--metadata-file", str(tmp_path / "idp.xml")))  # fmt: skip
    text = run(op, "connections", "show", "shown", as_json=False)
    sp = made["sp"]
    for line in (f"sp_metadata_url: {sp['metadata_url']}", f"sp_entity_id: {sp['entity_id']}",
                 f"acs_url: {sp['acs_url']}", f"slo_url: {sp['slo_url']}",
                 f"sp_certificate_sha256: {sp['certificate_fingerprint']}",
                 f"idp_certificates_sha256: {cert.sha256}"):  # fmt: skip
        assert line in text.splitlines(), text
    assert "BEGIN CERTIFICATE" not in text and "<md:" not in text  # named, not dumped
    assert 'sp_private_key: "(set)"' in text


def test_create_from_a_metadata_url(
    op: LiveServer, metadata_server: MetadataServer, cert: IdpCert
) -> None:
    second = idp_cert("second")  # an IdP mid-rollover publishes two signing certificates
    url = metadata_server.serve("/fed/metadata.xml", metadata(cert, second))
    made = json.loads(run(op, "connections", "create", "--strategy", "samlp", "--name",
                          "by-url", "--metadata-url", url))  # fmt: skip
    assert made["options"]["metadata_url"] == url and "metadata_xml" not in made["options"]
    assert made["options"]["idp_certificates"] == [cert.sha256, second.sha256]
    # --fingerprint pins only what the operator confirmed (colons and case do not matter)
    colons = ":".join(second.sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    one = json.loads(run(op, "connections", "create", "--strategy", "samlp", "--name",
                         "by-url-pinned", "--metadata-url", url, "--fingerprint", colons))  # fmt: skip
    assert one["options"]["idp_certificates"] == [second.sha256]
    stranger = idp_cert("stranger").sha256
    out = fails(op, "connections", "create", "--strategy", "samlp", "--name", "by-url-bad",
                "--metadata-url", url, "--fingerprint", stranger)  # fmt: skip
    assert f"fingerprint {stranger} is not a signing certificate" in out


def test_the_metadata_is_checked(
    op: LiveServer, metadata_server: MetadataServer, cert: IdpCert, tmp_path: Any
) -> None:
    def create(name: str, *flags: str) -> str:
        return fails(op, "connections", "create", "--strategy", "samlp", "--name", name, *flags)

    assert "HTTP 404" in create("m1", "--metadata-url", metadata_server.base + "/missing")
    closed = f"http://127.0.0.1:{free_port()}/metadata"  # nothing listens there
    assert "the request failed" in create("m2", "--metadata-url", closed)
    assert "non-public address" in fails(  # the SSRF guard, as the server's settings say
        op, "connections", "create", "--strategy", "samlp", "--name", "m2b",
        "--metadata-url", "http://10.0.0.1/metadata")  # fmt: skip
    html = metadata_server.serve("/html", "<html><body>sign in</body></html>")
    assert "not an EntityDescriptor" in create("m3", "--metadata-url", html)
    broken = metadata_server.serve("/broken", "<md:EntityDescriptor")
    assert "not well-formed" in create("m4", "--metadata-url", broken)
    unsigned = metadata_server.serve("/unsigned", metadata(encryption=cert))
    assert "no signing certificate" in create("m5", "--metadata-url", unsigned)
    (tmp_path / "text.txt").write_text("not xml at all")
    assert "must be an XML document" in create("m6", "--metadata-file", str(tmp_path / "text.txt"))
    assert "needs metadata_url or metadata_xml" in create("m7")
    (tmp_path / "ok.xml").write_text(metadata(cert))
    both = ("--metadata-file", str(tmp_path / "ok.xml"), "--metadata-url", closed)
    assert "not both" in create("m8", *both)
    ok = ("--metadata-file", str(tmp_path / "ok.xml"))
    assert "default_client_id" in create("m9", *ok, "--idp-initiated")
    assert "no client 'nobody'" in create("m10", *ok, "--idp-initiated",
                                          "--default-client-id", "nobody")  # fmt: skip
    assert "request_binding" in create("m11", *ok, "--request-binding", "artifact")
    refused = json.loads(run(op, "connections", "list"))
    assert not [c for c in refused if c["name"].startswith("m") and c["name"][1:].isdigit()]


def test_idp_initiated_goes_to_a_real_app(op: LiveServer, cert: IdpCert, tmp_path: Any) -> None:
    client = op.factory.gen_client()
    (tmp_path / "idp.xml").write_text(metadata(cert))
    made = json.loads(run(
        op, "connections", "create", "--strategy", "samlp", "--name", "idp-init",
        "--metadata-file", str(tmp_path / "idp.xml"), "--idp-initiated",
        "--default-client-id", client.client_id, "--enable-for", client.client_id,
    ))  # fmt: skip
    assert made["options"]["idp_initiated"] is True
    assert made["options"]["default_client_id"] == client.client_id
    out = fails(op, "connections", "update", "idp-init", "--default-client-id", "gone")
    assert "no client 'gone'" in out


def test_rotate_certificate(op: LiveServer, cert: IdpCert, tmp_path: Any) -> None:
    (tmp_path / "idp.xml").write_text(metadata(cert))
    made = json.loads(run(op, "connections", "create", "--strategy", "samlp", "--name",
                          "rotating", "--metadata-file", str(tmp_path / "idp.xml")))  # fmt: skip
    _, before = stored(op, "rotating")
    rotated = json.loads(run(op, "connections", "rotate-certificate", "rotating"))
    _, after = stored(op, "rotating")
    assert after["sp_certificate"] != before["sp_certificate"]
    assert after["sp_private_key"] != before["sp_private_key"]
    assert public_key(after["sp_private_key"]) == public_key(after["sp_certificate"])
    # one generation kept, to open assertions still encrypted to the old certificate
    assert after["sp_previous_certificate"] == before["sp_certificate"]
    assert after["sp_previous_private_key"] == before["sp_private_key"]
    assert rotated["options"]["sp_previous_private_key"] == "(set)"
    assert rotated["sp"]["certificate_fingerprint"] == sha256_pem(after["sp_certificate"])
    assert rotated["sp"]["certificate_fingerprint"] != made["sp"]["certificate_fingerprint"]
    assert rotated["sp"]["previous_certificate_fingerprint"] == made["sp"][
        "certificate_fingerprint"]  # fmt: skip
    raw, _ = stored(op, "rotating")
    assert PRIVATE not in raw
    text = run(op, "connections", "rotate-certificate", "rotating", as_json=False)
    assert "sp_certificate_sha256: " in text
    assert stored(op, "rotating")[1]["sp_previous_certificate"] == after["sp_certificate"]
    assert "not a samlp connection" in fails(op, "connections", "rotate-certificate", "database")
    assert "no connection" in fails(op, "connections", "rotate-certificate", "nope")


def test_update_pins_again_and_checks_fingerprints(
    op: LiveServer, metadata_server: MetadataServer, cert: IdpCert, tmp_path: Any
) -> None:
    url = metadata_server.serve("/rollover.xml", metadata(cert))
    run(op, "connections", "create", "--strategy", "samlp", "--name", "upd", "--metadata-url", url)
    _, before = stored(op, "upd")
    new = idp_cert("next")
    stranger = idp_cert("stranger").sha256
    # the IdP rolls its key over: its new certificate is pinned once the metadata shows it
    assert "is not a signing certificate" in fails(
        op, "connections", "update", "upd", "--fingerprint", new.sha256)  # fmt: skip
    metadata_server.serve("/rollover.xml", metadata(cert, new))
    updated = json.loads(run(op, "connections", "update", "upd", "--fingerprint", new.sha256))
    assert updated["options"]["idp_certificates"] == [new.sha256]
    assert "is not a signing certificate" in fails(
        op, "connections", "update", "upd", "--fingerprint", stranger)  # fmt: skip
    # a metadata file replaces the URL, and its certificates are pinned
    (tmp_path / "new.xml").write_text(metadata(new))
    moved = json.loads(run(op, "connections", "update", "upd", "--metadata-file",
                           str(tmp_path / "new.xml"), "--sign-requests"))  # fmt: skip
    assert "metadata_url" not in moved["options"] and moved["options"]["sign_requests"]
    assert moved["options"]["idp_certificates"] == [new.sha256]
    _, after = stored(op, "upd")  # updates never touch the SP's pair
    assert after["sp_private_key"] == before["sp_private_key"]
    assert after["sp_certificate"] == before["sp_certificate"]
    assert "cannot be removed" in fails(op, "connections", "update", "upd", "--unset",
                                        "idp_certificates")  # fmt: skip
    assert "generated by idp" in fails(op, "connections", "update", "upd", "--unset",
                                       "sp_private_key")  # fmt: skip
    assert "needs metadata_url or metadata_xml" in fails(
        op, "connections", "update", "upd", "--unset", "metadata_xml")  # fmt: skip


def test_the_service_keeps_a_whole_pair_it_is_given(op: LiveServer, cert: IdpCert) -> None:
    """The SAML tests bring an SP key pair their IdP already trusts; a half or a mismatched
    pair is refused (operators cannot send one at all: test_samlp_api)."""
    key, certificate = credentials.new_sp_credentials("given")
    other_key, _ = credentials.new_sp_credentials("other")
    base = {"metadata_xml": metadata(cert)}
    with op.app.app_context():
        connections.create_connection(
            db.session, name="given-pair", strategy="samlp", box=services().box,
            options={**base, "sp_private_key": key, "sp_certificate": certificate},
        )  # fmt: skip
        db.session.commit()
        for options, message in [
            ({"sp_private_key": other_key, "sp_certificate": certificate}, "is not sp_private_key"),
            ({"sp_certificate": certificate}, "given together"),
            ({"sp_previous_certificate": certificate}, "no previous SP key pair"),
        ]:
            with pytest.raises(ValidationError, match=message):
                connections.create_connection(
                    db.session, name="bad-pair", strategy="samlp", box=services().box,
                    options={**base, **options},
                )  # fmt: skip
            db.session.rollback()
    _, opened = stored(op, "given-pair")
    assert opened["sp_private_key"] == key and opened["sp_certificate"] == certificate
