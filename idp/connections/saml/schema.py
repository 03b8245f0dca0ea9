"""pysaml2's XML schema check of each signed element, run by libxml2 instead of xmlschema.

Before it checks a signature, pysaml2 validates the signed element (its own serialisation of
the Assertion or Response, ``str(item)``) against the SAML 2.0 protocol schema and the schemas
it imports (SAML assertion, XML Signature, XML Encryption): a document shaped outside the
schema (a second ``<ds:Signature>``, an element out of place: the shapes of XML signature
wrapping) is refused before any digest is computed. pysaml2 does it with ``xmlschema``, pure
Python: ~2 ms of a login's ~25 here (bench/saml.py). This module gives the same check the same
XSD files, pysaml2's own copies, compiled once per process by libxml2 (lxml, already idp's XML
parser): ~0.05 ms. All the namespaces pysaml2's validator loads, not only the protocol's imports:
under a lax wildcard (Advice, Extensions, ds:Object, AttributeValue) an element is checked
when its namespace is known, so metadata, eIDAS, XML Encryption 1.1, SOAP and ``xml:`` content
there is refused by both or neither. The one namespace only xmlschema knows is XSD's own (its
schema for schemas): no signed SAML element carries its elements.

The two validators are not the same code, so ``tests/connections/test_saml_schema.py`` runs
both over hundreds of altered assertions and responses and requires that libxml2 refuses
everything xmlschema refuses. libxml2 is stricter in one place found so far: ``xs:anyURI``
values that are not URI references (``2026-13-40T00:00:00Z`` as a ``Destination``), which no
conforming IdP sends and which idp would refuse later anyway; failing closed there is kept.

Nothing is fetched: the schemas' imports of the W3C locations resolve to pysaml2's bundled
files and the parsers have no network; a document's DTD is never loaded and its entities never
resolved (it was parsed by :mod:`idp.connections.saml.xmlsafe` first, which refuses any DTD).
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

import saml2.data.schemas
import saml2.sigver
from lxml import etree
from saml2.xml.schema import XMLSchemaError

# the schemaLocation URLs SAML's XSDs import; everything else is a file name beside them
_BUNDLED = {
    "http://www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd":
        "xmldsig-core-schema.xsd",
    "http://www.w3.org/TR/2002/REC-xmlenc-core-20021210/xenc-schema.xsd": "xenc-schema.xsd",
}  # fmt: skip
# every namespace pysaml2's validator loads (saml2.xml.schema's ``locations``) and its file: an
# element in one of them under a lax wildcard (Advice, Extensions, ds:Object, AttributeValue)
# is validated there, so it must be here too; the protocol first, the root pysaml2 builds from
_NAMESPACES = {
    "urn:oasis:names:tc:SAML:2.0:protocol": "saml-schema-protocol-2.0.xsd",
    "urn:oasis:names:tc:SAML:2.0:assertion": "saml-schema-assertion-2.0.xsd",
    "http://www.w3.org/2000/09/xmldsig#": "xmldsig-core-schema.xsd",
    "http://www.w3.org/2001/04/xmlenc#": "xenc-schema.xsd",
    "http://www.w3.org/2009/xmlenc11#": "xenc-schema-11.xsd",
    "http://www.w3.org/XML/1998/namespace": "xml.xsd",
    "http://schemas.xmlsoap.org/soap/envelope/": "envelope.xsd",
    "urn:oasis:names:tc:SAML:2.0:metadata": "saml-schema-metadata-2.0.xsd",
    "http://eidas.europa.eu/metadata/servicelist": "eidas-schema-metadata-servicelist.xsd",
    "http://eidas.europa.eu/saml-extensions": "eidas-schema-saml-extensions.xsd",
    "http://eidas.europa.eu/attributes/naturalperson": "eidas-schema-attribute-naturalperson.xsd",
    "http://eidas.europa.eu/attributes/legalperson": "eidas-schema-attribute-legalperson.xsd",
}
_DOCUMENT = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


class _BundledSchemas(etree.Resolver):
    """Resolves the schemas' imports to pysaml2's copies; anything unknown fails to load."""

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        name = _BUNDLED.get(system_url, system_url.rsplit("/", 1)[-1])
        path = files(saml2.data.schemas).joinpath(name)
        if not path.is_file():
            return None  # libxml2 then fails the import: the schema cannot be built
        return self.resolve_filename(str(path), context)


@functools.cache
def _schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, load_dtd=False)  # the XSDs' internal subsets only
    parser.resolvers.add(_BundledSchemas())
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{name}"/>'
        for namespace, name in _NAMESPACES.items()
    )
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    # the imports resolve beside pysaml2's files (the wrapper's own name is never read)
    base = str(files(saml2.data.schemas).joinpath("idp-wrapper.xsd"))
    return etree.XMLSchema(etree.fromstring(wrapper, parser, base_url=base))


def validate(doc: str | bytes) -> None:
    """``saml2.xml.schema.validate``'s contract: return, or raise ``XMLSchemaError``."""
    try:
        raw = doc.encode("utf-8") if isinstance(doc, str) else doc
        root = etree.fromstring(raw, _DOCUMENT)
        if root.getroottree().docinfo.doctype:
            raise etree.DocumentInvalid("a DTD")  # pysaml2's serialisation never has one
        _schema().assertValid(root)
    except Exception as exc:  # noqa: BLE001 (any failure to judge it is a refusal)
        # invalid, not XML, not encodable, libxml2 unable to judge it: refused, as pysaml2's
        # own validate refuses on any exception (not an error out of the signature check);
        # pysaml2 turns this into a SignatureError; the message never reaches a page or a log
        raise XMLSchemaError({"error": type(exc).__name__}) from None


def install() -> None:
    """Make pysaml2's signature check (``SecurityContext._check_signature``) use
    :func:`validate`. pysaml2 calls the validator by the name it imported into
    ``saml2.sigver``, its only use; process-wide, idempotent."""
    _schema()  # built now: a broken schema set fails at the first SAML use, not mid-login
    saml2.sigver.validate_doc_with_schema = validate
