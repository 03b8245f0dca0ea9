"""A FIDO Metadata Service (MDS3) of the tests' own: a root and intermediate CA that sign the
blob (a JWT with x5c, as mds3.fidoalliance.org serves it), an attestation CA per authenticator
maker, and a software authenticator that makes ``packed`` full attestations (WebAuthn §8.2)
with a certificate from that CA. Never use outside tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey

from tests.mfa.soft_authenticator import SoftAuthenticator, b64u

AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "idp tests"),
             x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]  # fmt: skip
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def issue(cn: str, issuer: Issued | None = None, ca: bool = True, ou: str | None = None,
          aaguid: str | None = None, days: int = 365) -> Issued:  # fmt: skip
    """A certificate for ``cn``: self-signed without ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, ou))
        .issuer_name(issuer.cert.subject if issuer else _name(cn, ou))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if aaguid:
        value = b"\x04\x10" + uuid.UUID(aaguid).bytes  # OCTET STRING (16 bytes)
        builder = builder.add_extension(x509.UnrecognizedExtension(AAGUID_OID, value), False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(key, cert)


@dataclass
class MdsPki:
    """The blob's signing chain: root -> intermediate -> signer (x5c = signer, intermediate)."""

    root: Issued = field(default_factory=lambda: issue("Test MDS Root"))
    intermediate: Issued = field(init=False)
    signer: Issued = field(init=False)

    def __post_init__(self) -> None:
        self.intermediate = issue("Test MDS Intermediate", self.root)
        self.signer = issue("mds.test", self.intermediate, ca=False)

    def blob(self, entries: list[dict[str, Any]], no: int, next_update: str | None = None,
             signer: Issued | None = None, x5c: list[bytes] | None = None) -> str:  # fmt: skip
        payload = {
            "legalHeader": "Test metadata, not the FIDO Alliance's.",
            "no": no,
            "nextUpdate": next_update or (dt.date.today() + dt.timedelta(days=30)).isoformat(),
            "entries": entries,
        }
        chain = x5c or [self.signer.der, self.intermediate.der]
        header = {"alg": "ES256", "typ": "JWT",
                  "x5c": [base64.b64encode(c).decode() for c in chain]}  # fmt: skip
        key = ECKey.import_key((signer or self.signer).key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))  # fmt: skip
        return jws.serialize_compact(header, json.dumps(payload).encode(), key)


def entry(aaguid: str, roots: list[Issued], description: str,
          statuses: tuple[str, ...] = ("FIDO_CERTIFIED_L1",)) -> dict[str, Any]:  # fmt: skip
    """A MetadataBLOBPayloadEntry (MDS3 §3.1.1) for a FIDO2 authenticator model."""
    return {
        "aaguid": aaguid,
        "metadataStatement": {
            "aaguid": aaguid, "description": description, "schema": 3,
            "attestationTypes": ["basic_full"],
            "attestationRootCertificates": [base64.b64encode(r.der).decode() for r in roots],
        },
        "statusReports": [{"status": s, "effectiveDate": "2026-01-01"} for s in statuses],
        "timeOfLastStatusChange": "2026-01-01",
    }  # fmt: skip


class AttestedAuthenticator(SoftAuthenticator):
    """``packed`` attestation (WebAuthn §8.2): full, signed by ``attestation`` (a certificate
    of an attestation CA, chained by ``chain``), or self attestation (no certificate)."""

    def __init__(self, aaguid: str, attestation: Issued | None = None,
                 chain: list[Issued] | None = None, **kw: Any) -> None:  # fmt: skip
        super().__init__(**kw)
        self.aaguid = aaguid
        self.attestation = attestation
        self.chain = chain or []

    def create(self, opts: dict[str, Any], origin: str, rp_id: str | None = None) -> str:
        n = self.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
        )
        rp_hash = hashlib.sha256((rp_id or opts["rp"]["id"]).encode()).digest()
        auth_data = (
            rp_hash + bytes([self._flags(True)]) + struct.pack(">I", self.count)
            + uuid.UUID(self.aaguid).bytes + struct.pack(">H", len(self.cred_id)) + self.cred_id
            + cose
        )  # fmt: skip
        cdj = self._client_data("webauthn.create", opts["challenge"], origin)
        signed = auth_data + hashlib.sha256(cdj).digest()
        signer = self.attestation.key if self.attestation else self.key
        stmt: dict[str, Any] = {"alg": -7, "sig": signer.sign(signed, ec.ECDSA(hashes.SHA256()))}
        if self.attestation:
            stmt["x5c"] = [self.attestation.der, *(c.der for c in self.chain)]
        att = cbor2.dumps({"fmt": "packed", "attStmt": stmt, "authData": auth_data})
        return json.dumps({
            "id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
            "response": {"clientDataJSON": b64u(cdj), "attestationObject": b64u(att),
                         "transports": ["usb"]},
        })  # fmt: skip


def attestation_cert(ca: Issued, aaguid: str) -> Issued:
    """An attestation certificate as WebAuthn §8.2.1 wants it: OU "Authenticator Attestation",
    not a CA, with the id-fido-gen-ce-aaguid extension."""
    return issue("Test Key Attestation", ca, ca=False, ou="Authenticator Attestation",
                 aaguid=aaguid)  # fmt: skip
