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
from saml2.xml.schema import XMLSchemaError, _schema_validator_default
from saml2.xml.schema import validate as pysaml2_validate

from idp.connections.saml import schema
from tests.connections.saml_idp import SamlIdp

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _refused(check: object, doc: str) -> bool:
    try:
        check(doc)  # type: ignore[operator]
    except XMLSchemaError:
        return True
    return False


CHANGES = ("remove", "double", "swap", "attribute", "foreign", "nested", "text", "any-type")


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
    elif change == "any-type":  # its content unchecked, were xs:anyType allowed to replace its type
        target.set(f"{{{XSI}}}type", "xsdq:anyType")
        altered = etree.tostring(copied).decode()
        return altered.replace(" ", f' xmlns:xsdq="{XSD}" ', 1)  # declared on the root
    return etree.tostring(copied).decode()


def _structural(doc: str) -> Iterator[tuple[str, str]]:
    """Each element removed, doubled, moved before its sibling, given an unknown attribute, a
    foreign child, a nested Assertion, stray text, ``xsi:type="xs:anyType"``: the moves of XML
    signature wrapping."""
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


def _lax(doc: str) -> Iterator[tuple[str, str]]:
    """Every global element pysaml2's validator knows, empty and with a stray child, in the
    Advice's lax wildcard (``##other``: validated where a declaration is known), then xml:lang
    and xml:space given values outside their types there. The XSD namespace's own elements
    aside: xmlschema knows the schema for schemas, libxml2 does not (no signed SAML element
    carries them, and they could not stand for an Assertion or a Response)."""
    root = etree.fromstring(doc.encode())
    conditions = root.find(f"{{{SAML}}}Conditions")
    assert conditions is not None  # the Advice goes after it (saml:AssertionType)
    values = [("lang", "!!"), ("space", "bogus")]
    foreign = [f"{{urn:example}}x {{http://www.w3.org/XML/1998/namespace}}{name}={value}"
               for name, value in values]  # fmt: skip
    for name in sorted(_schema_validator_default.maps.elements):
        if not name.startswith(f"{{{XSD}}}"):
            foreign += [f"{name} ", f"{name} {{urn:example}}zz"]
    for spec in foreign:
        tag, rest = spec.split(" ", 1)
        copied = copy.deepcopy(root)
        advice = etree.Element(f"{{{SAML}}}Advice")
        element = etree.SubElement(advice, tag)
        if "=" in rest:
            attribute, value = rest.split("=")
            element.set(attribute, value)
        elif rest:
            etree.SubElement(element, rest)
        copied.find(f"{{{SAML}}}Conditions").addnext(advice)
        yield f"advice {spec}", etree.tostring(copied).decode()


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
    assert refused_by_pysaml2 > 300
    # the Assertion: under a lax wildcard, whatever pysaml2's schemas declare is checked too
    refused_by_pysaml2 = 0
    for label, altered in _lax(documents[1]):
        if _refused(pysaml2_validate, altered):
            refused_by_pysaml2 += 1
            assert _refused(schema.validate, altered), label
    # the alterations exercise the check (a run where nothing was refused would prove nothing)
    assert refused_by_pysaml2 > 150


def test_a_repeated_id_is_refused_by_both(documents: list[str]) -> None:
    """xs:ID values are unique in a document (XML Schema Part 2 §3.3.8): two elements with one
    ID are how a wrapped copy would answer the reference to the signed one."""
    checked = 0
    for doc in documents:
        root = etree.fromstring(doc.encode())
        ids = [(i, n) for i, e in enumerate(root.iter()) for n in ("ID", "Id") if e.get(n)]
        for source, source_name in ids:
            for target, target_name in ids:
                if source == target:
                    continue
                copied = copy.deepcopy(root)
                elements = list(copied.iter())
                elements[target].set(target_name, elements[source].get(source_name) or "")
                altered = etree.tostring(copied).decode()
                assert _refused(pysaml2_validate, altered) and _refused(schema.validate, altered)
                checked += 1
    assert checked >= 4  # the Response's, its Assertion's and their Signatures' IDs


def test_libxml2_has_every_namespace_pysaml2s_validator_has() -> None:
    """An element of a namespace libxml2 was not given would be skipped under a lax
    wildcard where pysaml2's validator checks it (the XSD's and XSI's built in to both)."""
    loaded = set(_schema_validator_default.maps.namespaces) - {XSD, XSI}
    assert loaded == set(schema._NAMESPACES)


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


def test_any_failure_to_judge_is_a_refusal(documents: list[str]) -> None:
    """pysaml2's validator refuses on any exception; so does this one (a lone surrogate cannot
    be encoded: a refusal, not an error out of the signature check)."""
    doc = documents[1].replace(">ursula<", ">urs\ud800la<")
    assert _refused(pysaml2_validate, doc)
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
