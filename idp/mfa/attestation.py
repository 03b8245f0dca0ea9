"""WebAuthn attestation policy: which authenticators may be registered (WebAuthn §6.5
attestation, §7.1 steps 21-24 "assess the attestation trustworthiness").

The tenant chooses (``WEBAUTHN_ATTESTATION``, a tenant setting):

* ``none`` (default, right for passkeys): no attestation is asked for and any is accepted.
* ``indirect``: attestation is asked for (the client may anonymise it). An authenticator whose
  model the imported FIDO metadata (:mod:`idp.mfa.mds`) knows must chain to that model's roots
  when it sends a certificate, and is refused when the FIDO Alliance reported it revoked or
  compromised; unknown models and unattested keys are accepted.
* ``direct``: the authenticator must prove its model: a full attestation (an ``x5c`` chain)
  to the attestation roots the metadata lists for its AAGUID (for U2F keys, for its
  certificate's key identifier), with no refused status report. Self attestation, ``none``
  and unknown models are refused; so is everything while no metadata has been imported.

``WEBAUTHN_AAGUID_ALLOWLIST`` (comma-separated AAGUIDs; a tenant setting) applies under every
policy: a non-empty list refuses every other model. Under ``none`` the AAGUID is only what the
authenticator claims; ``direct`` makes it proven.

The chain itself is checked by py_webauthn (``pem_root_certs_bytes_by_fmt`` holding only the
claimed model's roots, so another vendor's certificate cannot pass); this module adds what
the library leaves to the relying party: the choice of roots, the status reports, and that
the attestation certificate's id-fido-gen-ce-aaguid extension names the same AAGUID
(WebAuthn §8.2.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from idp.core import clock
from idp.extensions import db
from idp.i18n import N_
from idp.mfa import mds
from idp.tenant.settings import setting

if TYPE_CHECKING:  # py_webauthn is imported by a registration, not by the server's start
    from webauthn.helpers.structs import AttestationFormat

log = logging.getLogger(__name__)
POLICIES = ("none", "indirect", "direct")
AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")  # id-fido-gen-ce-aaguid
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"
# Why an authenticator was refused, as the person registering it reads it.
MESSAGES = {
    "allowlist": N_("This security key or passkey is not accepted here: its model is not on "
                    "this service's list of allowed authenticators."),
    "unattested": N_("This security key or passkey is not accepted here: it did not prove "
                     "which model it is, and this service only accepts certified models."),
    "unknown": N_("This security key or passkey is not accepted here: its model is not "
                  "certified by the FIDO Alliance, or its certificate could not be verified."),
    "no_metadata": N_("This security key or passkey is not accepted here: the service cannot "
                      "check security keys at the moment. Contact the service's support."),
    "REVOKED": N_("This security key or passkey is not accepted here: the FIDO Alliance "
                  "revoked its model's certification."),
    "USER_VERIFICATION_BYPASS": N_("This security key or passkey is not accepted here: its "
                                   "model can be used without verifying its owner."),
    "ATTESTATION_KEY_COMPROMISE": N_("This security key or passkey is not accepted here: its "
                                     "maker's attestation key was compromised."),
    "USER_KEY_REMOTE_COMPROMISE": N_("This security key or passkey is not accepted here: keys "
                                     "can be extracted from its model."),
    "USER_KEY_PHYSICAL_COMPROMISE": N_("This security key or passkey is not accepted here: "
                                       "keys can be extracted from its model."),
}  # fmt: skip


class AttestationRefused(ValueError):
    """The tenant's policy refuses this authenticator; ``message`` is for the person."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"attestation refused: {reason} {detail}".strip())
        self.reason = reason
        self.message = MESSAGES.get(reason, MESSAGES["unknown"])


def policy() -> str:
    value = str(setting("WEBAUTHN_ATTESTATION"))
    if value not in POLICIES:  # the API and config checks refuse others; a hand edit: closed
        log.warning("WEBAUTHN_ATTESTATION %r is not one of %s; using direct", value, POLICIES)
        return "direct"
    return value


def allowlist() -> frozenset[str]:
    raw = str(setting("WEBAUTHN_AAGUID_ALLOWLIST"))
    return frozenset(a.strip().lower() for a in raw.split(",") if a.strip())


def conveyance() -> str:
    """AttestationConveyancePreference for the registration options (WebAuthn §5.4.7)."""
    return policy()


@dataclass
class Claim:
    """What a registration response says about its authenticator, before any of it is
    verified: the format, the AAGUID, the certificate chain, and the model's metadata."""

    fmt: str
    aaguid: str
    x5c: list[bytes]
    policy: str
    allowed: frozenset[str]
    metadata: mds.Metadata | None
    entry: mds.Entry | None = field(default=None)

    def roots(self) -> dict[AttestationFormat, list[bytes]] | None:
        """py_webauthn's ``pem_root_certs_bytes_by_fmt``: only the claimed model's roots (keyed
        by the enum: a str-valued Enum member hashes by its name, not its value)."""
        from webauthn.helpers.structs import AttestationFormat

        if self.policy == "none" or self.entry is None or not self.entry.roots:
            return None
        try:
            fmt = AttestationFormat(self.fmt)
        except ValueError:  # a format py_webauthn does not know: it refuses the response
            return None
        # alone: beside a root of the same name, OpenSSL may pick that one and fail
        return {fmt: _anchored(self.x5c, self.entry.roots) or list(self.entry.roots)}

    def decide(self) -> dict[str, object]:
        """Run after the library verified the response with :meth:`roots`. The additions to
        the credential's ``Factor.data``, or :class:`AttestationRefused`."""
        if self.allowed and self.aaguid not in self.allowed:
            raise AttestationRefused("allowlist", self.aaguid)
        model = self.entry.description if self.entry else None
        if self.policy == "none":
            return {"model": model, "attested": False}
        status = self.entry.refused_status() if self.entry else None
        if status is not None:
            raise AttestationRefused(status, self.aaguid)
        attested = bool(self.x5c) and self.roots() is not None
        if attested and not _names_aaguid(self.x5c[0], self.aaguid):
            raise AttestationRefused("unknown", "certificate names another AAGUID")
        if self.policy == "direct":
            if self.metadata is None:
                raise AttestationRefused("no_metadata")
            if not self.x5c:
                raise AttestationRefused("unattested", f"{self.fmt} {self.aaguid}")
            if not attested:
                raise AttestationRefused("unknown", self.aaguid)
        return {"model": model, "attested": attested}


def _aaguid(raw: bytes) -> str:
    """16 bytes as the AAGUID's text form (py_webauthn's ``aaguid_to_string``)."""
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _names_aaguid(der: bytes, aaguid: str) -> bool:
    """WebAuthn §8.2.1: when the certificate has id-fido-gen-ce-aaguid, it is the AAGUID of
    authenticatorData (an OCTET STRING of 16 bytes)."""
    try:
        ext = x509.load_der_x509_certificate(der).extensions.get_extension_for_oid(AAGUID_OID)
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    raw = getattr(ext.value, "value", b"")
    return len(raw) == 18 and raw[:2] == b"\x04\x10" and _aaguid(raw[2:]) == aaguid


def _anchored(x5c: list[bytes], roots: tuple[bytes, ...]) -> list[bytes]:
    """A lone self-signed attestation certificate signed by a listed root's name and key (an
    authenticator that re-issues its certificate each time, as Chromium's virtual one does),
    as a root of its own: RFC 5280 §6.1.1 (d) makes the trust anchor a name and a key, not one
    certificate, while OpenSSL trusts a self-signed certificate only when those very bytes are
    in its store."""
    if len(x5c) != 1:
        return []
    try:
        leaf = x509.load_der_x509_certificate(x5c[0])
        anchors = [x509.load_pem_x509_certificate(r) for r in roots]
    except ValueError:
        return []
    for anchor in anchors:
        if anchor.subject != leaf.subject or anchor.public_key() != leaf.public_key():
            continue
        try:
            leaf.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return [leaf.public_bytes(serialization.Encoding.PEM)]
    return []


def _key_id(der: bytes) -> str:
    """The hex SubjectKeyIdentifier MDS3 lists U2F authenticators by (§3.1.1)."""
    cert = x509.load_der_x509_certificate(der)
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    return ski.digest.hex()


def claim(credential: str) -> Claim:
    """Read the response's attestation (unverified) and find its model in the metadata.
    Raises what py_webauthn's parsers raise on a malformed response."""
    from webauthn.helpers import parse_attestation_object, parse_registration_credential_json

    parsed = parse_registration_credential_json(credential)
    att = parse_attestation_object(parsed.response.attestation_object)
    data = att.auth_data.attested_credential_data
    aaguid = _aaguid(data.aaguid) if data is not None else ZERO_AAGUID
    x5c = list(att.att_stmt.x5c or [])
    found = Claim(str(att.fmt), aaguid.lower(), x5c, policy(), allowlist(),
                  mds.load(db.session))  # fmt: skip
    if found.metadata is not None:
        found.entry = found.metadata.by_aaguid.get(found.aaguid)
        if found.entry is None and aaguid == ZERO_AAGUID and x5c:
            found.entry = found.metadata.by_key_id.get(_key_id(x5c[0]))
        if found.metadata.stale(clock.now()):
            log.warning("the FIDO metadata blob is past its nextUpdate: import a new one")
    return found


def authenticator_name(aaguid: str) -> str | None:
    """The model's description in the imported FIDO metadata ("YubiKey 5 Series"), for the
    account page; None when no metadata was imported or the model is not in it."""
    metadata = mds.load(db.session)
    if metadata is None or not aaguid:
        return None
    entry = metadata.by_aaguid.get(aaguid.lower())
    return entry.description if entry else None
