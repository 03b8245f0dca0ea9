"""The signed elements' schema check in libxml2 (``idp.connections.saml.schema``) against
pysaml2's own (``saml2.xml.schema.validate``, xmlschema), the oracle: on hundreds of altered
assertions and responses, whatever pysaml2's validator refuses libxml2 refuses too, and the
genuine documents pass both. Then that pysaml2 really calls it. Whole logins with signature
wrapping (refused by this check among others) are tests/security/test_saml_attacks.py's."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import saml2.sigver
from lxml import etree
from saml2 import samlp
from saml2.sigver import SignatureError
from saml2.xml.schema import XMLSchemaError
from saml2.xml.schema import validate as pysaml2_validate

from idp.connections.saml import schema
from tests.connections.saml_idp import SamlIdp

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _refused(check: object, doc: str) -> bool:
    try:
        check(doc)  # type: ignore[operator]
    except XMLSchemaError:
        return True
    return False


CHANGES = ("remove", "double", "swap", "attribute", "foreign", "nested", "text")


def _altered(root: Any, index: int, change: str) -> str:
    copied = copy.deepcopy(root)
    target = list(copied.iter())[index]
    if change == "remove":
        target.getparent().remove(target)
    elif change == "double":
        target.addnext(copy.deepcopy(target))
    elif change == "swap" and target.getprevious() is not None:
        target.getprevious().addprevious(target)
    elif change == "attribute":
        target.set("Bogus", "1")
    elif change == "foreign":
        etree.SubElement(target, "{urn:example}y")
    elif change == "nested":
        etree.SubElement(target, f"{{{SAML}}}Assertion")
    elif change == "text":
        target.text = (target.text or "") + "zz"
    return etree.tostring(copied).decode()


def _structural(doc: str) -> Iterator[tuple[str, str]]:
    """Each element removed, doubled, moved before its sibling, given an unknown attribute, a
    foreign child, a nested Assertion, stray text: the moves of XML signature wrapping."""
    root = etree.fromstring(doc.encode())
    for index, element in enumerate(root.iter()):
        if element is not root and isinstance(element.tag, str):
            for change in CHANGES:
                yield f"{change} {element.tag}", _altered(root, index, change)


def _values(doc: str) -> Iterator[tuple[str, str]]:
    """Every attribute given values of the wrong type (empty, a bad date, a bad NCName)."""
    root = etree.fromstring(doc.encode())
    for i, element in enumerate(root.iter()):
        if not isinstance(element.tag, str):
            continue
        for name in list(element.attrib):
            for value in ("", "not a date", "1x", "2026-13-40", "2.0.0"):
                copied = copy.deepcopy(root)
                list(copied.iter())[i].set(name, value)
                yield f"{element.tag}@{name}={value!r}", etree.tostring(copied).decode()


@pytest.fixture(scope="module")
def documents(saml_idp: SamlIdp) -> list[str]:
    """A signed response's Response and Assertion as pysaml2 validates them (``str(item)``)."""
    xml = saml_idp.response_xml("_req", "ursula", sign_response=True)
    response = samlp.response_from_string(xml)
    return [str(response), str(response.assertion[0])]


def test_genuine_documents_pass_both(documents: list[str]) -> None:
    for doc in documents:
        pysaml2_validate(doc)
        schema.validate(doc)


def test_libxml2_refuses_all_that_pysaml2s_validator_refuses(documents: list[str]) -> None:
    refused_by_pysaml2 = 0
    for doc in documents:
        for label, altered in [*_structural(doc), *_values(doc)]:
            if _refused(pysaml2_validate, altered):
                refused_by_pysaml2 += 1
                assert _refused(schema.validate, altered), label
    # the alterations exercise the check (a run where nothing was refused would prove nothing)
    assert refused_by_pysaml2 > 300


def test_the_structural_verdicts_are_the_same(documents: list[str]) -> None:
    """Where the validators could differ by design (xs:anyURI's lexical space) aside, the
    structure is judged alike both ways: accepted by one means accepted by the other."""
    for doc in documents:
        for label, altered in _structural(doc):
            assert _refused(schema.validate, altered) == _refused(pysaml2_validate, altered), label


def test_documents_with_a_dtd_or_not_xml_are_refused(documents: list[str]) -> None:
    entity = '<!DOCTYPE x [<!ENTITY e "ursula">]>' + documents[1].replace(">ursula<", ">&e;<")
    for doc in (entity, "<not-closed", ""):
        assert _refused(schema.validate, doc)


def test_pysaml2s_signature_check_runs_it(
    saml_idp: SamlIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed where pysaml2 looks it up; a refusal there is pysaml2's SignatureError."""
    schema.install()
    assert saml2.sigver.validate_doc_with_schema is schema.validate
    seen: list[str] = []

    def refusing(doc: str) -> None:
        seen.append(doc)
        raise XMLSchemaError({"error": "test"})

    monkeypatch.setattr(saml2.sigver, "validate_doc_with_schema", refusing)
    sec = saml2.sigver.SecurityContext(saml2.sigver.CryptoBackendXmlSec1("/usr/bin/xmlsec1"))
    response = samlp.response_from_string(saml_idp.response_xml("_req", "ursula"))
    with pytest.raises(SignatureError):
        sec._check_signature("", response.assertion[0], must=True)
    assert seen == [str(response.assertion[0])]
