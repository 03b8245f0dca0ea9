"""The SP's own key pair and certificate fingerprints.

SAML carries keys as X.509 certificates (SAML 2.0 Metadata §2.4.1.1, ``<ds:X509Certificate>``);
the SP's is self-signed: metadata exchange, not a CA, establishes trust between SAML parties,
so the IdP's operator pins it from idp's SP metadata as idp pins the IdP's by fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_SIZE = 3072  # NIST SP 800-57: 128-bit security through 2030 and beyond
VALIDITY = datetime.timedelta(days=3650)
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def new_sp_credentials(name: str) -> tuple[str, str]:
    """A fresh RSA key and a self-signed certificate (CN=``name``, ten years): the PEM key
    (PKCS#8, unencrypted: it is sealed in the connection's options) and the PEM certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "idp")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def der(certificate: str) -> bytes:
    """The DER bytes of a PEM certificate or of bare base64 (metadata's X509Certificate,
    whitespace allowed); ValueError when it is neither."""
    found = _PEM.search(certificate)
    text = found.group(1) if found else certificate
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a PEM or base64 certificate") from None
    if not data:
        raise ValueError("not a PEM or base64 certificate")
    return data


def fingerprint(certificate: str) -> str:
    """SHA-256 over the certificate's DER: hex, lowercase, no colons (what operators pin;
    ``openssl x509 -fingerprint -sha256`` prints it with colons, ignored when compared)."""
    return hashlib.sha256(der(certificate)).hexdigest()


def normalize(fingerprint_text: str) -> str:
    """A pinned fingerprint as compared: colons and case dropped."""
    return fingerprint_text.replace(":", "").strip().lower()


def bare(certificate: str) -> str:
    """The certificate as one line of base64 (metadata's and pysaml2's form)."""
    return base64.b64encode(der(certificate)).decode()


def pem(certificate: str) -> str:
    """The certificate as PEM."""
    body = bare(certificate)
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def check_certificate(certificate: str) -> x509.Certificate:
    """The parsed certificate (ValueError when it is not one)."""
    return x509.load_der_x509_certificate(der(certificate))
