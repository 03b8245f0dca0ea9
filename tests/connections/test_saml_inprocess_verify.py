"""The in-process signature check (``idp.connections.saml.xmlsec``: libxmlsec1 through
python-xmlsec) against the ``xmlsec1`` program pysaml2 runs otherwise: the same answer on the
tests' IdP's genuine and tampered responses, and what the program's switches refuse
(references outside the document, another key) refused before or by libxmlsec1. The attack
tests (tests/security/test_saml_attacks.py) run end to end through the in-process check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1, XmlsecError

from idp.connections.saml import xmlsec
from idp.connections.saml.config import XMLSEC
from tests.connections.saml_idp import SamlIdp, sp_credentials

ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"


def _program(xml: str, cert: str, node: str, node_id: str) -> bool:
    """pysaml2's own backend: the xmlsec1 program (a failure raises, as pysaml2's does)."""
    backend = CryptoBackendXmlSec1(XMLSEC, delete_tmpfiles=True)
    return bool(backend.validate_signature(xml, cert, "pem", node, node_id))


def _in_process(xml: str, cert: str, node: str, node_id: str) -> bool:
    backend = xmlsec.XmlSec1(XMLSEC, delete_tmpfiles=True)
    return backend.validate_signature(xml, cert, "pem", node, node_id)


def _agree(xml: str, cert: str, node: str, node_id: str) -> bool:
    """Both checks' verdict, which must be the same."""
    verdicts = []
    for check in (_program, _in_process):
        try:
            verdicts.append(check(xml, cert, node, node_id))
        except Exception:  # noqa: BLE001 - pysaml2's program path raises SignatureError
            verdicts.append(False)
    assert verdicts[0] == verdicts[1], (verdicts, xml[:400])
    return verdicts[0]


def _id(xml: str, element: str) -> str:
    found = re.search(rf"<(?:\w+:)?{element}\b[^>]*\bID=\"([^\"]+)\"", xml)
    assert found, xml[:400]
    return found.group(1)


@pytest.fixture
def cert(saml_idp: SamlIdp, tmp_path: Path) -> str:
    path = tmp_path / "idp.pem"
    path.write_text(saml_idp.certificate)
    return str(path)


def test_the_binding_is_installed() -> None:
    # a dependency (pyproject.toml): without it every check would start a process again
    assert xmlsec.libxmlsec is not None


def test_genuine_and_tampered_responses_get_the_programs_verdict(
    saml_idp: SamlIdp, cert: str
) -> None:
    signed = saml_idp.response_xml("_req", "ursula", sign_response=True)
    assertion, response = _id(signed, "Assertion"), _id(signed, "Response")
    assert _agree(signed, cert, ASSERTION, assertion) is True
    assert _agree(signed, cert, RESPONSE, response) is True
    tampered = signed.replace(">ursula<", ">admin<")
    assert tampered != signed
    assert _agree(tampered, cert, ASSERTION, assertion) is False
    assert _agree(tampered, cert, RESPONSE, response) is False
    # no element with that ID (the program's --node-id finds nothing), no signature at all
    assert _agree(signed, cert, ASSERTION, "_nobody") is False
    unsigned = saml_idp.response_xml("_req", "ursula", sign_assertion=False)
    assert _agree(unsigned, cert, ASSERTION, _id(unsigned, "Assertion")) is False


def test_another_certificate_verifies_nothing(saml_idp: SamlIdp, cert: str, tmp_path: Path) -> None:
    signed = saml_idp.response_xml("_req", "ursula")
    other = tmp_path / "other.pem"
    other.write_text(sp_credentials()[1])
    assert _agree(signed, cert, ASSERTION, _id(signed, "Assertion")) is True
    assert _agree(signed, str(other), ASSERTION, _id(signed, "Assertion")) is False


def test_a_reference_outside_the_document_is_never_followed(saml_idp: SamlIdp, cert: str) -> None:
    """``--enabled-reference-uris empty,same-doc``: refused before libxmlsec1 would fetch."""
    signed = saml_idp.response_xml("_req", "ursula")
    assertion = _id(signed, "Assertion")
    for uri in ("http://127.0.0.1:9/x", "file:///etc/passwd", "x.xml"):
        remote = signed.replace(f'URI="#{assertion}"', f'URI="{uri}"')
        assert remote != signed
        with pytest.raises(XmlsecError, match="outside the document"):
            _in_process(remote, cert, ASSERTION, assertion)


def test_a_duplicated_id_is_refused(saml_idp: SamlIdp, cert: str) -> None:
    """Two elements answering to the signed ID (the reference could resolve to either)."""
    signed = saml_idp.response_xml("_req", "ursula")
    root = etree.fromstring(signed.encode())
    assertion = root.find(f"{{{ASSERTION.rpartition(':')[0]}}}Assertion")
    assert assertion is not None
    root.append(etree.fromstring(etree.tostring(assertion)))
    twice = etree.tostring(root).decode()
    with pytest.raises(XmlsecError):
        _in_process(twice, cert, ASSERTION, _id(signed, "Assertion"))
