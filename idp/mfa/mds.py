"""The FIDO Metadata Service (MDS3) blob, verified offline: which authenticator models exist,
the roots their attestation certificates chain to, and what the FIDO Alliance reported about
them (FIDO Metadata Service v3.0 §3.1, §3.2).

The operator downloads the blob (a JWT, https://mds3.fidoalliance.org/) and imports it with
``idp mfa mds import FILE``; idp never fetches it itself. At import the JWT's ``x5c`` chain
(leaf first) must chain, certificate by certificate, to the configured FIDO root (GlobalSign
Root CA - R3, bundled as ``fido_mds_root.pem``; ``WEBAUTHN_MDS_ROOT`` names another PEM file),
each certificate inside its validity period, and the leaf's key must verify the JWS signature
(MDS3 §3.2 steps 4-5, RFC 7515 §5.2). Certificate revocation lists are not fetched (offline;
see the design notes). A blob whose serial ``no`` is lower than the stored one is refused: an
older blob could bring back a model since revoked (§3.1.6, serial numbers only grow).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core import clock
from idp.mfa.attestation_models import MetadataBlob

BUNDLED_ROOT = Path(__file__).with_name("fido_mds_root.pem")
MAX_BLOB_BYTES = 32 * 1024 * 1024  # the real blob is a few MB
ALGORITHMS = ["RS256", "ES256", "ES384", "PS256"]  # MDS3 §3.1.7: RS256 or ES256 in practice
ROW_ID = "mds3"
# AuthenticatorStatus values (MDS3 §3.1.4) under which an authenticator is refused whatever
# else its history says: a fixed firmware does not fix the keys already in users' hands.
REFUSED_STATUSES = (
    "REVOKED", "USER_VERIFICATION_BYPASS", "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE", "USER_KEY_PHYSICAL_COMPROMISE",
)  # fmt: skip


class MdsError(ValueError):
    """A blob that cannot be trusted or used; the message says why, for the operator."""


@dataclass(frozen=True)
class Entry:
    """One authenticator model (MDS3 §3.1.1 MetadataBLOBPayloadEntry)."""

    description: str | None
    roots: tuple[bytes, ...]  # attestationRootCertificates, PEM
    statuses: tuple[str, ...]  # statusReports[].status, in the blob's order

    def refused_status(self) -> str | None:
        return next((s for s in self.statuses if s in REFUSED_STATUSES), None)


@dataclass(frozen=True)
class Metadata:
    serial: int
    next_update: dt.date
    by_aaguid: dict[str, Entry]
    by_key_id: dict[str, Entry]  # U2F authenticators: attestationCertificateKeyIdentifiers

    def stale(self, now: int) -> bool:
        return _today(now) > self.next_update


def _today(now: int) -> dt.date:
    return dt.datetime.fromtimestamp(now, dt.UTC).date()


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


# ------------------------------------------------------------------------- verification
def load_root(path: str) -> x509.Certificate:
    """The trust anchor: ``path`` (PEM), or the bundled FIDO root when empty."""
    try:
        return x509.load_pem_x509_certificate(Path(path or BUNDLED_ROOT).read_bytes())
    except (OSError, ValueError) as exc:
        where = path or BUNDLED_ROOT
        raise MdsError(f"cannot read the MDS root certificate {where}: {exc}") from exc


def _chain(header: dict[str, Any], root: x509.Certificate, now: int) -> x509.Certificate:
    """The leaf of the header's x5c (RFC 7515 §4.1.6), once every link up to ``root`` holds."""
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or len(x5c) > 8:
        raise MdsError("the blob's header has no x5c certificate chain")
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True))
                 for c in x5c]  # fmt: skip
    except (ValueError, TypeError, binascii.Error) as exc:
        raise MdsError(f"the blob's x5c holds a certificate that cannot be read: {exc}") from exc
    if certs[-1] != root:
        certs.append(root)  # the root may be sent or left out (RFC 5280 §6.1: anchor)
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    for i, cert in enumerate(certs):
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            raise MdsError(f"certificate {cert.subject.rfc4514_string()} is not valid now")
        if i == 0:
            continue
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise MdsError(f"{cert.subject.rfc4514_string()} is not a CA certificate")
        try:
            certs[i - 1].verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise MdsError(
                "the blob's certificate chain does not lead to the configured MDS root "
                f"({certs[i - 1].issuer.rfc4514_string()}): {exc or 'bad signature'}"
            ) from exc
    return certs[0]


def _registry(alg: str) -> jws.JWSRegistry:
    """joserfc's limits fit tokens (a 512-byte header, 128 kB payload); the blob's header
    carries a certificate chain and its payload is megabytes."""
    registry = jws.JWSRegistry(algorithms=[alg])
    registry.max_header_length = 32 * 1024
    registry.max_payload_length = MAX_BLOB_BYTES
    return registry


def verify_blob(blob: str, root: x509.Certificate, now: int) -> tuple[dict[str, Any], str]:
    """The payload of ``blob`` and its signer's subject, or :class:`MdsError`."""
    blob = blob.strip()
    parts = blob.split(".")
    if len(parts) != 3:
        raise MdsError("not a JWT in compact serialisation (three base64url parts)")
    try:
        header = json.loads(_b64(parts[0]))
    except (ValueError, binascii.Error) as exc:
        raise MdsError(f"the blob's header is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        raise MdsError(f"the blob's alg must be one of {', '.join(ALGORITHMS)}")
    leaf = _chain(header, root, now)
    public = leaf.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        key = (RSAKey if str(header["alg"])[:2] in {"RS", "PS"} else ECKey).import_key(public)
        signed = jws.deserialize_compact(blob, key, registry=_registry(str(header["alg"])))
        payload = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise MdsError(f"the blob's signature does not verify: {exc}") from exc
    if not isinstance(payload, dict):
        raise MdsError("the blob's payload is not a JSON object")
    parse(payload)  # refuse now what could not be used later
    return payload, leaf.subject.rfc4514_string()


def parse(payload: dict[str, Any]) -> Metadata:
    """MDS3 §3.1.6 MetadataBLOBPayload: ``no``, ``nextUpdate``, ``entries``."""
    serial, next_update, entries = (payload.get(k) for k in ("no", "nextUpdate", "entries"))
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise MdsError("the blob's payload has no serial number (no)")
    try:
        next_date = dt.date.fromisoformat(str(next_update))
    except ValueError as exc:
        raise MdsError("the blob's nextUpdate is not a date (YYYY-MM-DD)") from exc
    if not isinstance(entries, list):
        raise MdsError("the blob's payload has no entries")
    by_aaguid: dict[str, Entry] = {}
    by_key_id: dict[str, Entry] = {}
    for raw in entries:
        if not isinstance(raw, dict):
            continue
        found = raw.get("metadataStatement")
        statement: dict[str, Any] = found if isinstance(found, dict) else {}
        try:
            roots = tuple(_pem(base64.b64decode(c)) for c in
                          statement.get("attestationRootCertificates") or [])  # fmt: skip
        except (ValueError, TypeError, binascii.Error):
            roots = ()  # a model whose roots cannot be read cannot be trusted, only named
        description = statement.get("description")
        listed = raw.get("statusReports")
        reports: list[Any] = listed if isinstance(listed, list) else []
        entry = Entry(
            description=description[:128] if isinstance(description, str) else None,
            roots=roots,
            statuses=tuple(str(r.get("status")) for r in reports if isinstance(r, dict)),
        )
        if isinstance(raw.get("aaguid"), str):
            by_aaguid[raw["aaguid"].lower()] = entry
        for key_id in raw.get("attestationCertificateKeyIdentifiers") or []:
            if isinstance(key_id, str):
                by_key_id[key_id.lower()] = entry
    return Metadata(serial, next_date, by_aaguid, by_key_id)


# ------------------------------------------------------------------------------ storage
def import_blob(session: Session, blob: str, root: x509.Certificate) -> tuple[Metadata, bool]:
    """Verify and store ``blob``; returns it and whether it replaced another one. The same
    serial again is accepted (a second import of one file changes nothing)."""
    if len(blob) > MAX_BLOB_BYTES:
        raise MdsError("the file is too large for an MDS3 blob")
    now = clock.now()
    payload, signer = verify_blob(blob, root, now)
    metadata = parse(payload)
    row = session.get(MetadataBlob, ROW_ID, with_for_update=True)
    if row is not None and metadata.serial < row.serial:
        raise MdsError(
            f"the blob's serial {metadata.serial} is older than the imported one ({row.serial})"
        )
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    values = {
        "serial": metadata.serial, "next_update": metadata.next_update.isoformat(),
        "digest": hashlib.sha256(text.encode()).hexdigest(), "payload": text,
        "entries": len(payload.get("entries") or []), "signer": signer[:255], "imported_at": now,
    }  # fmt: skip
    replaced = row is not None and row.serial != metadata.serial
    if row is None:
        session.add(MetadataBlob(id=ROW_ID, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    return metadata, replaced


def stored(session: Session) -> MetadataBlob | None:
    return session.get(MetadataBlob, ROW_ID)


_cache: dict[str, Metadata] = {}
_cache_lock = threading.Lock()


def load(session: Session) -> Metadata | None:
    """The imported metadata, parsed once per worker for each stored payload (its digest is
    read each time: one small row, and only registrations and account pages ask)."""
    digest = session.scalar(select(MetadataBlob.digest).where(MetadataBlob.id == ROW_ID))
    if digest is None:
        return None
    with _cache_lock:
        found = _cache.get(digest)
    if found is not None:
        return found
    text = session.scalar(select(MetadataBlob.payload).where(MetadataBlob.id == ROW_ID))
    if text is None:
        return None
    metadata = parse(json.loads(text))
    with _cache_lock:
        if len(_cache) > 4:  # another import, or another app in this process (tests)
            _cache.clear()
        _cache[digest] = metadata
    return metadata


def warnings(next_update: dt.date, now: int) -> list[str]:
    """What an operator should hear about a blob's age (MDS3 §3.1.6 nextUpdate)."""
    if _today(now) > next_update:
        return [f"the blob's nextUpdate ({next_update.isoformat()}) has passed: download a new "
                "blob from https://mds3.fidoalliance.org/ and import it"]  # fmt: skip
    return []
