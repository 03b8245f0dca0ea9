"""The test IdP's ``<samlp:Response>`` (SAML 2.0 Core §3.3.3, Profiles §4.1.4.2), built from
pysaml2's message classes and signed / encrypted by pysaml2's security context (xmlsec1),
with the knobs attack tests need (see ``tests/connections/saml_idp.py``)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saml2 import class_name, saml, samlp
from saml2.saml import NAMEID_FORMAT_ENTITY, NAMEID_FORMAT_PERSISTENT
from saml2.sigver import pre_encrypt_assertion, pre_encryption_part, pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from idp.connections.saml import credentials
from idp.connections.saml.contract import Sp

CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
GROUPS_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
STYLES = {  # profile field -> attribute name, per IdP product
    "plain": {"email": "mail", "given": "givenName", "family": "sn", "name": "cn",
              "groups": "memberOf"},
    "adfs": {"email": CLAIMS + "emailaddress", "given": CLAIMS + "givenname",
             "family": CLAIMS + "surname", "name": CLAIMS + "name", "groups": GROUPS_CLAIM},
    "okta": {"email": "email", "given": "firstName", "family": "lastName", "groups": "groups"},
    "oid": {"email": "urn:oid:0.9.2342.19200300.100.1.3", "given": "urn:oid:2.5.4.42",
            "family": "urn:oid:2.5.4.4", "name": "urn:oid:2.16.840.1.113730.3.1.241"},
    "none": {},  # no attributes at all (only the NameID)
}  # fmt: skip
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
PASSWORD_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
_DEFAULT: Any = object()


@dataclass
class Knobs:
    sign_response: bool = False
    sign_assertion: bool = True
    sign_alg: str = SIG_RSA_SHA256
    digest_alg: str = DIGEST_SHA256
    encrypt: bool = False
    skew: int = 0
    lifetime: int = 300
    audience: str | None = None
    recipient: str | None = None
    destination: Any = _DEFAULT
    issuer: str | None = None
    in_response_to: Any = _DEFAULT
    status: str | None = None
    attributes: str = "plain"
    extra: dict[str, list[str]] = field(default_factory=dict)
    name_id: str | None = None
    name_id_format: str = NAMEID_FORMAT_PERSISTENT


def _at(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def user_attributes(username: str, style: str) -> dict[str, list[str]]:
    email = username if "@" in username else f"{username}@saml.test"
    local = email.split("@")[0]
    values = {"email": [email], "given": [local.capitalize()], "family": ["Saml"],
              "name": [f"{local.capitalize()} Saml"], "groups": ["staff", f"team-{local}"]}  # fmt: skip
    return {name: values[key] for key, name in STYLES[style].items()}


def _attribute_statement(attributes: dict[str, list[str]]) -> saml.AttributeStatement:
    return saml.AttributeStatement(attribute=[
        saml.Attribute(
            name=name, name_format=URI if ":" in name else BASIC,
            attribute_value=[saml.AttributeValue(text=v) for v in values],
        )
        for name, values in attributes.items()
    ])  # fmt: skip


def _new_id() -> str:
    return "_" + secrets.token_hex(16)


def build_response(
    server: Any, knobs: Knobs, *, request_id: str | None, username: str, sp: Sp, issuer: str,
    key: str, cert: str, sp_cert: str, directory: Path,
) -> str:  # fmt: skip
    now = time.time() + knobs.skew
    in_response_to = request_id if knobs.in_response_to is _DEFAULT else knobs.in_response_to
    destination = sp.acs_url if knobs.destination is _DEFAULT else knobs.destination
    who = knobs.issuer or issuer
    response = samlp.Response(
        id=_new_id(), version="2.0", issue_instant=_at(now), in_response_to=in_response_to,
        destination=destination, issuer=saml.Issuer(text=who, format=NAMEID_FORMAT_ENTITY),
    )  # fmt: skip
    if knobs.status is not None:
        response.status = samlp.Status(status_code=samlp.StatusCode(value=knobs.status))
        return _sign(server, response, None, knobs, key, cert, sp_cert, directory)
    response.status = samlp.Status(status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS))
    confirmation = saml.SubjectConfirmationData(
        in_response_to=in_response_to, not_on_or_after=_at(now + knobs.lifetime),
        recipient=knobs.recipient or sp.acs_url,
    )  # fmt: skip
    attributes = {**user_attributes(username, knobs.attributes), **knobs.extra}
    assertion = saml.Assertion(
        id=_new_id(), version="2.0", issue_instant=_at(now),
        issuer=saml.Issuer(text=who, format=NAMEID_FORMAT_ENTITY),
        subject=saml.Subject(
            name_id=saml.NameID(format=knobs.name_id_format, text=knobs.name_id or username),
            subject_confirmation=[saml.SubjectConfirmation(
                method=saml.SCM_BEARER, subject_confirmation_data=confirmation,
            )],
        ),
        conditions=saml.Conditions(
            not_before=_at(now - 30), not_on_or_after=_at(now + knobs.lifetime),
            audience_restriction=[saml.AudienceRestriction(
                audience=[saml.Audience(text=knobs.audience or sp.entity_id)],
            )],
        ),
        authn_statement=[saml.AuthnStatement(
            authn_instant=_at(now), session_index=_new_id(),
            authn_context=saml.AuthnContext(
                authn_context_class_ref=saml.AuthnContextClassRef(text=PASSWORD_TRANSPORT),
            ),
        )],
        attribute_statement=[_attribute_statement(attributes)] if attributes else [],
    )  # fmt: skip
    response.assertion = assertion
    return _sign(server, response, assertion, knobs, key, cert, sp_cert, directory)


def _sign(
    server: Any, response: Any, assertion: Any, knobs: Knobs, key: str, cert: str,
    sp_cert: str, directory: Path,
) -> str:  # fmt: skip
    """Assertion signed, then encrypted, then the response signed (Core §6.2: the signature
    of an encrypted assertion is inside it)."""
    key_file = directory / f"sign-{credentials.fingerprint(cert)[:16]}.key"
    key_file.write_text(key)
    bare = credentials.bare(cert)
    algs = {"sign_alg": knobs.sign_alg, "digest_alg": knobs.digest_alg}
    if knobs.sign_response:
        response.signature = pre_signature_part(response.id, bare, 1, **algs)
    sign_assertion = assertion is not None and knobs.sign_assertion
    if sign_assertion:
        assertion.signature = pre_signature_part(assertion.id, bare, 2, **algs)
    if assertion is not None and knobs.encrypt:
        tag = assertion._to_element_tree().tag
        response = pre_encrypt_assertion(response)
        xml = response.get_xml_string_with_self_contained_assertion_within_encrypted_assertion(tag)
    else:
        xml = str(response)
    sec = server.sec
    if sign_assertion:
        xml = sec.sign_statement(xml, class_name(assertion), key_file=str(key_file),
                                 node_id=assertion.id)  # fmt: skip
    if assertion is not None and knobs.encrypt:
        cert_file = directory / "sp-encryption.crt"
        cert_file.write_text(credentials.pem(sp_cert))
        template = pre_encryption_part(msg_enc=AES256_CBC, encrypt_cert=credentials.bare(sp_cert))
        xml = sec.encrypt_assertion(xml, str(cert_file), str(template), key_type="aes-256")
    if knobs.sign_response:
        xml = sec.sign_statement(xml, class_name(response), key_file=str(key_file),
                                 node_id=response.id)  # fmt: skip
    return xml if isinstance(xml, str) else xml.decode()
