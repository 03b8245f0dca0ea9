"""``/api/v2/connections`` with ``strategy: samlp`` (issue 13, "Operators"): created from
metadata XML and from a metadata URL (a loopback HTTP server), pins taken from the metadata or
checked against it, the SP's key generated, sealed at rest and never answered, reads carrying
what the IdP's operator registers (``sp``), PATCH re-pinning, ``POST .../keys/rotate`` and
400 problems for what cannot be used."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from idp.connections import strategies
from tests.conftest import LiveServer, build_app, serving
from tests.connections.social import UPSTREAM_SETTINGS
from tests.connections.test_connections_cli import stored
from tests.connections.test_samlp_cli import (
    IdpCert,
    MetadataServer,
    idp_cert,
    metadata,
    public_key,
    serving_metadata,
    sha256_pem,
)
from tests.management.conftest import Mgmt, grant
from tests.management.test_connections_api import problem

PRIVATE = "PRIVATE KEY"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An idp server allowed to reach the loopback IdP (as ``social_op``), for this module."""
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, **UPSTREAM_SETTINGS)) as server:
        yield server


@pytest.fixture(scope="module")
def metadata_server() -> Iterator[MetadataServer]:
    with serving_metadata() as site:
        yield site


@pytest.fixture(autouse=True)
def _no_key_answered(mgmt: Mgmt) -> Iterator[None]:
    yield
    assert not [seen for seen in mgmt.seen if PRIVATE in seen or strategies.SEALED in seen]


@pytest.fixture
def cert() -> IdpCert:
    return idp_cert()


def make(mgmt: Mgmt, name: str, **options: Any) -> dict[str, Any]:
    resp = mgmt.call("POST", "/connections", json={"name": name, "strategy": "samlp",
                                                   "options": options})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_create_from_metadata_xml_and_read(mgmt: Mgmt, op: LiveServer, cert: IdpCert) -> None:
    made = make(mgmt, "corp-saml", metadata_xml=metadata(cert), domains=["corp.test"],
                sign_requests=True, map={"email": "mail"}, email_verified=True)  # fmt: skip
    options = made["options"]
    assert options["idp_certificates"] == [cert.sha256]  # pinned from the metadata
    assert "sp_private_key" not in options  # write-only: not even "(set)"
    assert options["domains"] == ["corp.test"] and options["sign_requests"] is True
    assert made["sp"] == {
        "entity_id": f"{op.url}/samlp/metadata/corp-saml",
        "metadata_url": f"{op.url}/samlp/metadata/corp-saml",
        "acs_url": f"{op.url}/login/callback/corp-saml",
        "slo_url": f"{op.url}/samlp/logout/corp-saml",
        "certificate_fingerprint": sha256_pem(options["sp_certificate"]),
    }
    raw, opened = stored(op, "corp-saml")
    assert PRIVATE not in raw and strategies.SEALED in raw  # sealed at rest
    assert public_key(opened["sp_private_key"]) == public_key(options["sp_certificate"])
    assert mgmt.call("GET", f"/connections/{made['id']}").json() == made
    listed = mgmt.call("GET", "/connections", params={"strategy": "samlp"}).json()
    assert made in listed


def test_create_from_a_metadata_url(
    mgmt: Mgmt, metadata_server: MetadataServer, cert: IdpCert
) -> None:
    second = idp_cert("second")
    url = metadata_server.serve("/api/metadata.xml", metadata(cert, second))
    made = make(mgmt, "url-saml", metadata_url=url)
    assert made["options"]["idp_certificates"] == [cert.sha256, second.sha256]
    chosen = make(mgmt, "url-saml-pinned", metadata_url=url, idp_certificates=[second.sha256])
    assert chosen["options"]["idp_certificates"] == [second.sha256]
    stranger = idp_cert("stranger").sha256
    resp = mgmt.call("POST", "/connections", json={"name": "url-saml-bad", "strategy": "samlp",
                     "options": {"metadata_url": url, "idp_certificates": [stranger]}})  # fmt: skip
    problem(resp, 400, f"fingerprint {stranger} is not a signing certificate")


def test_what_cannot_be_used_is_refused(
    mgmt: Mgmt, op: LiveServer, metadata_server: MetadataServer, cert: IdpCert
) -> None:
    ok = metadata(cert)
    cases = [
        ({"metadata_url": metadata_server.base + "/gone"}, "HTTP 404"),
        ({"metadata_url": metadata_server.serve("/page", "<html/>")}, "not an EntityDescriptor"),
        ({"metadata_xml": "<md:EntityDescriptor"}, "not well-formed"),
        ({"metadata_xml": "plain text"}, "must be an XML document"),
        ({"metadata_xml": metadata(encryption=cert)}, "no signing certificate"),
        ({}, "needs metadata_url or metadata_xml"),
        ({"metadata_xml": ok, "idp_initiated": True}, "idp_initiated needs default_client_id"),
        ({"metadata_xml": ok, "idp_initiated": True, "default_client_id": "nobody"},
         "no client 'nobody'"),
        ({"metadata_xml": ok, "sp_private_key": "-----BEGIN PRIVATE KEY-----x"},
         "generated by idp"),
        ({"metadata_xml": ok, "sp_certificate": cert.pem}, "generated by idp"),
        ({"metadata_xml": ok, "signingCert": cert.b64}, "unknown option"),  # Auth0's name
    ]  # fmt: skip
    for number, (options, message) in enumerate(cases):
        body = {"name": f"refused-{number}", "strategy": "samlp", "options": options}
        problem(mgmt.call("POST", "/connections", json=body), 400, message)
    names = [c["name"] for c in mgmt.call("GET", "/connections").json()]
    assert not [n for n in names if n.startswith("refused-")]


def test_patch_pins_again(
    mgmt: Mgmt, op: LiveServer, metadata_server: MetadataServer, cert: IdpCert
) -> None:
    client = op.factory.gen_client()
    url = metadata_server.serve("/patch.xml", metadata(cert))
    made = make(mgmt, "patched", metadata_url=url)
    new = idp_cert("next")
    path = f"/connections/{made['id']}"
    resp = mgmt.call("PATCH", path, json={"options": {"idp_certificates": [new.sha256]}})
    problem(resp, 400, "is not a signing certificate")  # not in the metadata yet
    metadata_server.serve("/patch.xml", metadata(cert, new))
    resp = mgmt.call("PATCH", path, json={"options": {"idp_certificates": [new.sha256]}})
    assert resp.status_code == 200 and resp.json()["options"]["idp_certificates"] == [new.sha256]
    resp = mgmt.call("PATCH", path, json={"options": {"metadata_xml": metadata(new),
                     "idp_initiated": True, "default_client_id": client.client_id}})  # fmt: skip
    assert resp.status_code == 200, resp.text
    options = resp.json()["options"]
    assert "metadata_url" not in options and options["idp_certificates"] == [new.sha256]
    assert options["sp_certificate"] == made["options"]["sp_certificate"]  # the pair stays
    problem(mgmt.call("PATCH", path, json={"options": {"default_client_id": "gone"}}), 400,
            "no client 'gone'")  # fmt: skip
    problem(mgmt.call("PATCH", path, json={"options": {"sp_certificate": cert.pem}}), 400,
            "generated by idp")  # fmt: skip


def test_rotate_the_sp_keys(mgmt: Mgmt, op: LiveServer, cert: IdpCert) -> None:
    made = make(mgmt, "rotated", metadata_xml=metadata(cert))
    _, before = stored(op, "rotated")
    resp = mgmt.call("POST", f"/connections/{made['id']}/keys/rotate")
    assert resp.status_code == 200, resp.text
    key = resp.json()
    assert set(key) == {"cert", "fingerprint", "thumbprint"}
    _, after = stored(op, "rotated")
    assert key["cert"] == after["sp_certificate"] != before["sp_certificate"]
    assert after["sp_private_key"] != before["sp_private_key"]
    assert public_key(after["sp_private_key"]) == public_key(key["cert"])
    assert key["thumbprint"] == sha256_pem(key["cert"])
    assert key["fingerprint"].replace(":", "").lower() == key["thumbprint"]
    assert after["sp_previous_private_key"] == before["sp_private_key"]
    read = mgmt.call("GET", "/connections/rotated").json()
    assert read["sp"]["certificate_fingerprint"] == key["thumbprint"]
    assert read["sp"]["previous_certificate_fingerprint"] == made["sp"]["certificate_fingerprint"]
    assert "sp_previous_private_key" not in read["options"]
    problem(mgmt.call("POST", "/connections/database/keys/rotate"), 400,
            "not a samlp connection")  # fmt: skip
    problem(mgmt.call("POST", "/connections/con_nope/keys/rotate"), 404, "no connection")
    reader = Mgmt(op, grant(op, ["read:connections"]), ["read:connections"], [])
    resp = reader.call("POST", "/connections/rotated/keys/rotate")
    assert resp.status_code == 403
    assert stored(op, "rotated")[1]["sp_certificate"] == after["sp_certificate"]  # unchanged
