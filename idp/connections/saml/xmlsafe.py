"""Reading untrusted SAML messages before pysaml2 and xmlsec1 do.

Everything that arrives from a browser (``SAMLResponse``, ``SAMLRequest``) or an IdP's metadata
URL passes here first: base64 checked and capped (SAML 2.0 Bindings §3.5.4, §3.4.4.1), then
parsed by defusedxml with DTDs forbidden. pysaml2 7.5 parses with defusedxml too, but its
default allows a DOCTYPE (only entity declarations are refused), and xmlsec1, which pysaml2
runs on the same bytes, parses with libxml2 on its own: a document with any DOCTYPE is refused
here, before either sees it (SAML 2.0 Core §1.3 has no use for one).
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from idp.connections.saml.contract import UpstreamError, refused

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
_BASE64 = re.compile(rb"^[A-Za-z0-9+/\r\n\t ]*={0,2}[\r\n\t ]*$")


def parse(data: bytes | str, what: str) -> Element:
    """The document's root, parsed without DTD, entities or external references; any other
    outcome is ``bad_xml`` (no parser text in the error: it may quote the document)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        return fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        detail = f"{what}: {type(exc).__name__} (DTDs and entities are refused)"
        raise refused("bad_xml", detail) from None
    except (ParseError, ValueError, UnicodeError, RecursionError):
        raise refused("bad_xml", f"{what}: not well-formed XML") from None


def decode_post(value: str, max_size: int, what: str) -> bytes:
    """An HTTP-POST binding field (Bindings §3.5.4: base64 of the XML, no compression),
    refused when larger than ``max_size`` decoded or encoded, or not base64."""
    if not isinstance(value, str) or not value:
        raise refused("bad_response", f"{what}: missing")
    # base64 is 4/3 of its data: the encoded cap keeps a huge field from being decoded at all
    if len(value) > max_size * 4 // 3 + 4096:
        raise refused("response_too_large", f"{what}: larger than {max_size} bytes")
    encoded = value.encode("ascii", "replace")
    if not _BASE64.match(encoded):
        raise refused("bad_response", f"{what}: not base64")
    try:
        data = base64.b64decode(b"".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise refused("bad_response", f"{what}: not base64") from None
    if len(data) > max_size:
        raise refused("response_too_large", f"{what}: larger than {max_size} bytes")
    return data


def decode_redirect(value: str, max_size: int, what: str) -> bytes:
    """An HTTP-Redirect binding field (Bindings §3.4.4.1: DEFLATE, then base64), inflated at
    most to ``max_size`` (a small deflated field can expand a thousandfold)."""
    compressed = decode_post(value, max_size, what)
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(compressed, max_size + 1)
    except zlib.error:
        raise refused("bad_request", f"{what}: not DEFLATE data") from None
    if len(data) > max_size or inflater.unconsumed_tail:
        raise refused("response_too_large", f"{what}: larger than {max_size} bytes inflated")
    return data


def tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def unique_ids(root: Element, what: str) -> None:
    """No two elements share an ``ID`` (Core §1.3.4: xs:ID is unique in a document; xmlsec1
    resolves a signature's reference by ID, and a duplicate is how signature wrapping hides a
    forged element beside the signed one)."""
    seen: set[str] = set()
    for element in root.iter():
        for name in ("ID", "Id", "id"):
            value = element.get(name)
            if value is None:
                continue
            if value in seen:
                raise refused("bad_response", f"{what}: an ID appears twice (signature wrapping)")
            seen.add(value)


def count(root: Element, namespace: str, name: str) -> int:
    """How many ``name`` elements the whole document holds, at any depth."""
    return sum(1 for _ in root.iter(tag(namespace, name)))


__all__ = [
    "DS", "MD", "SAML", "SAMLP", "UpstreamError", "count", "decode_post", "decode_redirect",
    "parse", "tag", "unique_ids",
]  # fmt: skip
