"""Secrets at rest: keyed digests for high-entropy secrets, authenticated encryption for keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def random_token(nbytes: int = 32) -> str:
    """URL-safe random string; 32 bytes give 256 bits (RFC 6749 §10.10 asks for >= 128)."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Lookup digest of a bearer artefact (codes, refresh tokens, session ids)."""
    return hashlib.sha256(value.encode()).hexdigest()


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


class SecretBox:
    """Keyed digests and encryption derived from the instance secret (never stored in the DB)."""

    def __init__(self, instance_secret: str) -> None:
        if len(instance_secret) < 32:
            raise ValueError("the instance secret must be at least 32 characters")
        self._pepper = _derive(instance_secret, b"idp client-secret digest v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(instance_secret, b"idp at-rest v1")))

    def digest(self, value: str) -> str:
        """HMAC-SHA256 of a long random secret. A pepper, not a slow hash: the secrets are
        random 256-bit values, so brute force is not the threat; a stolen table is."""
        return hmac.new(self._pepper, value.encode(), hashlib.sha256).hexdigest()

    def verify(self, value: str, expected_digest: str) -> bool:
        return hmac.compare_digest(self.digest(value), expected_digest)

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)
