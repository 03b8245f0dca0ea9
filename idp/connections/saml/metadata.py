"""The IdP's metadata (SAML 2.0 Metadata §2.3.2, §2.4.3) and idp's own SP metadata (§2.4.4).

The IdP's document comes from the connection's ``metadata_xml`` or is fetched from its
``metadata_url`` through the SSRF-guarded client (that URL's host only), cached per process
for :data:`TTL` seconds. Metadata signatures are not checked: trust comes from the signing
certificates' fingerprints the operator pinned (``idp_certificates``), compared here.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from idp.connections.saml import credentials
from idp.connections.saml.contract import Settings, Sp, UpstreamError, refused
from idp.connections.saml.xmlsafe import DS, MD, parse, tag
from idp.connections.upstream.transport import call, hosts_of
from idp.core import clock

TTL = 3600
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
NAME_ID_FORMATS = (
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
)

_lock = threading.Lock()
_cache: dict[str, tuple[int, str]] = {}


@dataclass(frozen=True)
class IdpInfo:
    """What idp uses of an IdP's metadata."""

    entity_id: str
    sso: Mapping[str, str]  # binding -> SingleSignOnService Location (read-only: shared)
    slo: Mapping[str, str]  # binding -> SingleLogoutService Location
    signing: tuple[str, ...]  # signing certificates, bare base64 DER
    want_signed_requests: bool


def _bad(detail: str, description: str = "") -> UpstreamError:
    return refused(
        "bad_metadata", detail,
        description or "The sign-in provider's configuration could not be used.",
    )  # fmt: skip


def clear() -> None:
    """Forget every cached document (tests)."""
    with _lock:
        _cache.clear()


def idp_metadata(options: dict[str, Any], settings: Settings) -> str:
    """The IdP's metadata XML: ``metadata_xml`` as configured, or ``metadata_url``'s answer,
    from the cache when younger than :data:`TTL` (``unreachable``, ``response_too_large`` or
    ``bad_metadata`` otherwise)."""
    if isinstance(options.get("metadata_xml"), str) and options["metadata_xml"]:
        return str(options["metadata_xml"])
    url = options.get("metadata_url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise refused("bad_configuration", "samlp: neither metadata_xml nor metadata_url",
                      "This sign-in method is not configured correctly.")  # fmt: skip
    now = clock.now()
    with _lock:
        cached = _cache.get(url)
    if cached is not None and now - cached[0] < TTL:
        return cached[1]
    response = call(
        "GET", url, hosts=hosts_of([url]), settings=settings, what="saml metadata",
        headers={"Accept": "application/samlmetadata+xml, application/xml"},
    )  # fmt: skip
    if not 200 <= response.status < 300:
        raise _bad(f"saml metadata: HTTP {response.status}",
                   "The sign-in provider's configuration could not be read.")  # fmt: skip
    try:
        text = response.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("saml metadata: not UTF-8") from None
    read(text)  # refuse a document idp cannot use before caching it
    with _lock:
        _cache[url] = (now, text)
    return text


def _one_idp(root: Element) -> Element:
    """The one EntityDescriptor with an IDPSSODescriptor (an aggregate naming several IdPs
    is refused: the connection is for one)."""
    if root.tag == tag(MD, "EntityDescriptor"):
        entities = [root]
    elif root.tag == tag(MD, "EntitiesDescriptor"):
        entities = list(root.iter(tag(MD, "EntityDescriptor")))
    else:
        raise _bad("saml metadata: not an EntityDescriptor")
    idps = [e for e in entities if e.find(tag(MD, "IDPSSODescriptor")) is not None]
    if len(idps) != 1:
        raise _bad(f"saml metadata: {len(idps)} identity providers, not 1")
    return idps[0]


def _services(descriptor: Element, name: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for service in descriptor.findall(tag(MD, name)):
        binding, location = service.get("Binding"), service.get("Location")
        if binding and location and urlsplit(location).scheme in ("http", "https"):
            found.setdefault(binding, location)
    return found


@functools.lru_cache(maxsize=32)
def read(metadata_xml: str) -> IdpInfo:
    """The IdP's entity ID, endpoints and signing certificates (KeyDescriptor with
    ``use="signing"`` or no ``use``, Metadata §2.4.1.1). Remembered per document text (the
    same few documents are read at every AuthnRequest and response; parsing one and loading
    its certificates cost ~0.3 ms); a document refused is read again each time."""
    entity = _one_idp(parse(metadata_xml, "saml metadata"))
    descriptor = entity.find(tag(MD, "IDPSSODescriptor"))
    assert descriptor is not None  # _one_idp chose it for this
    if PROTOCOL not in (descriptor.get("protocolSupportEnumeration") or "").split():
        raise _bad("saml metadata: the IdP does not support SAML 2.0")
    signing: list[str] = []
    for key in descriptor.findall(tag(MD, "KeyDescriptor")):
        if key.get("use", "signing") != "signing":
            continue
        for cert in key.iter(tag(DS, "X509Certificate")):
            try:
                credentials.check_certificate(cert.text or "")
                text = credentials.bare(cert.text or "")
            except ValueError:
                raise _bad("saml metadata: a certificate is unreadable") from None
            if text not in signing:
                signing.append(text)
    entity_id = entity.get("entityID") or ""
    sso = _services(descriptor, "SingleSignOnService")
    if not entity_id or not sso:
        raise _bad("saml metadata: no entityID or no SingleSignOnService")
    return IdpInfo(
        entity_id=entity_id, sso=MappingProxyType(sso),
        slo=MappingProxyType(_services(descriptor, "SingleLogoutService")),
        signing=tuple(signing),
        want_signed_requests=descriptor.get("WantAuthnRequestsSigned") in ("true", "1"),
    )  # fmt: skip


def metadata_certificates(metadata_xml: str) -> list[str]:
    """The SHA-256 fingerprints of the IdP's signing certificates (what an operator confirms
    and pins as ``idp_certificates``)."""
    return [credentials.fingerprint(c) for c in read(metadata_xml).signing]


def trusted(info: IdpInfo, options: dict[str, Any]) -> tuple[str, ...]:
    """The certificates a signature may come from: those of the metadata whose fingerprint
    the operator pinned (``idp_certificates``); a certificate in the metadata but not pinned
    is not trusted. When nothing is pinned, the metadata's own certificates are trusted (the
    metadata is then the trust anchor: as safe as the channel it came by, https or the
    operator's file)."""
    pinned = {credentials.normalize(f) for f in options.get("idp_certificates") or []}
    if not pinned:
        certs = info.signing
    else:
        certs = tuple(c for c in info.signing if credentials.fingerprint(c) in pinned)
    if not certs:
        raise refused("certificate_not_pinned",
                      "saml: no signing certificate of the IdP's metadata is pinned")  # fmt: skip
    return certs


def _key_descriptor(use: str, certificate: str) -> str:
    return (
        f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{credentials.bare(certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor>"
    )


def pysaml2_metadata(info: IdpInfo, certs: tuple[str, ...]) -> str:
    """The IdP's metadata as pysaml2 is given it: its entity ID and endpoints, and only the
    trusted signing certificates (pysaml2 verifies with every certificate its metadata holds
    for the issuer)."""
    services = "".join(
        f"<md:{kind} Binding={quoteattr(b)} Location={quoteattr(url)}/>"
        for kind, table in (("SingleLogoutService", info.slo), ("SingleSignOnService", info.sso))
        for b, url in table.items()
    )
    keys = "".join(_key_descriptor("signing", c) for c in certs)
    return (
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" '
        f"entityID={quoteattr(info.entity_id)}>"
        f'<md:IDPSSODescriptor protocolSupportEnumeration="{PROTOCOL}">{keys}{services}'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def sp_metadata(options: dict[str, Any], sp: Sp) -> str:
    """idp's SP metadata for this connection (Metadata §2.4.4): its entity ID, the ACS
    (HTTP-POST), single logout (HTTP-Redirect), the one certificate for signing and for
    encryption, the NameID formats it takes, ``AuthnRequestsSigned`` as configured and
    ``WantAssertionsSigned`` true."""
    certificate = options.get("sp_certificate")
    keys = ""
    if isinstance(certificate, str) and certificate:
        keys = _key_descriptor("signing", certificate) + _key_descriptor("encryption", certificate)
    formats = "".join(f"<md:NameIDFormat>{escape(f)}</md:NameIDFormat>" for f in NAME_ID_FORMATS)
    signed = "true" if options.get("sign_requests") else "false"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID={quoteattr(sp.entity_id)}>'
        f'<md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" '
        f'protocolSupportEnumeration="{PROTOCOL}">{keys}'
        f"<md:SingleLogoutService Binding={quoteattr(REDIRECT)} Location={quoteattr(sp.slo_url)}/>"
        f"{formats}"
        f'<md:AssertionConsumerService index="0" isDefault="true" Binding={quoteattr(POST)} '
        f"Location={quoteattr(sp.acs_url)}/>"
        "</md:SPSSODescriptor></md:EntityDescriptor>\n"
    )
