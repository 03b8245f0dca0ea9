"""Secrets at rest: keyed digests for high-entropy secrets, authenticated encryption for keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def random_token(nbytes: int = 32) -> str:
    """URL-safe random string; 32 bytes give 256 bits (RFC 6749 §10.10 asks for >= 128)."""
    return secrets.token_urlsafe(nbytes)


_ALPHANUMERIC = string.ascii_letters + string.digits


def random_identifier(length: int = 32) -> str:
    """Random letters and digits only, as Auth0's 32-character client ids: 190 bits, and never
    a leading ``-`` that a command line would read as an option."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


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
        self._pairwise = _derive(instance_secret, b"idp pairwise subject v1")

    def digest(self, value: str) -> str:
        """HMAC-SHA256 of a long random secret. A pepper, not a slow hash: the secrets are
        random 256-bit values, so brute force is not the threat; a stolen table is."""
        return hmac.new(self._pepper, value.encode(), hashlib.sha256).hexdigest()

    def verify(self, value: str, expected_digest: str) -> bool:
        return hmac.compare_digest(self.digest(value), expected_digest)

    def pairwise_subject(self, sector: str, local_id: str) -> str:
        """OIDC Core §8.1: a ``sub`` for one sector, a keyed hash of the sector and the local
        account id: stable, different per sector, and unlinkable without the instance secret
        (a plain hash of a guessable user id could be recomputed by anyone)."""
        message = f"{sector}\x00{local_id}".encode()
        digest = hmac.new(self._pairwise, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)
