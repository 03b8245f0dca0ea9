"""Signing keys: creation, rotation, the JWKS (RFC 7517) and JWT signing/verification.

Keys are cached per worker for ``KEY_CACHE_SECONDS`` so signing and the JWKS survive a short
database outage. Rotation publishes the new key at once and keeps retired keys in the JWKS
until every token they signed has expired (OIDC Core §10.1.1).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.crypto import SecretBox, random_token
from idp.keys.models import SigningKey

SUPPORTED_ALGS = ("RS256", "ES256")


def create_key(session: Session, box: SecretBox, alg: str = "RS256") -> SigningKey:
    """Generate a key pair, encrypt its private half with the instance secret, and store it."""
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SUPPORTED_ALGS}")
    kid = random_token(12)
    params: Any = {"kid": kid, "alg": alg, "use": "sig"}
    key: RSAKey | ECKey
    key = (
        RSAKey.generate_key(2048, parameters=params)
        if alg == "RS256"
        else (ECKey.generate_key("P-256", parameters=params))
    )
    row = SigningKey(
        kid=kid,
        alg=alg,
        public_jwk=key.as_dict(private=False),
        private_encrypted=box.encrypt(key.as_pem(private=True)),
        created_at=clock.now(),
    )
    session.add(row)
    return row


def rotate(session: Session, box: SecretBox, alg: str, keep_published_for: int) -> SigningKey:
    """Make a new key the signing key; retire the others, still published for a while."""
    now = clock.now()
    for old in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        old.retired_at = now
        old.unpublish_at = now + keep_published_for
    return create_key(session, box, alg)


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    key: RSAKey | ECKey
    public_jwk: dict[str, str]


class KeyRing:
    """The worker's view of the signing keys."""

    def __init__(
        self, box: SecretBox, cache_seconds: float, session: Callable[[], Session]
    ) -> None:
        self._session = session
        self._box = box
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._signing: LoadedKey | None = None
        self._published: list[LoadedKey] = []
        self._keyset = KeySet([])
        self._jwks_json = '{"keys": []}'

    def refresh(self, force: bool = False) -> None:
        """Reload from the database when the cache is older than ``cache_seconds``."""
        if not force and time.monotonic() - self._loaded_at < self._cache_seconds:
            return
        session = self._session()
        with self._lock:
            now = clock.now()
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
            published: list[LoadedKey] = []
            signing: LoadedKey | None = None
            known = {k.kid: k for k in self._published}
            for row in rows:
                if row.unpublish_at is not None and row.unpublish_at <= now:
                    continue
                # Parsing an RSA private key costs tens of milliseconds (OpenSSL checks it):
                # keys already loaded are kept, only new ones are decrypted and parsed.
                loaded = known.get(row.kid) or self._load(row)
                published.append(loaded)
                if row.retired_at is None:
                    signing = loaded
            self._published = published
            self._signing = signing
            self._keyset = KeySet([k.key for k in published])
            self._jwks_json = json.dumps({"keys": [k.public_jwk for k in published]})
            self._loaded_at = time.monotonic()

    def _load(self, row: SigningKey) -> LoadedKey:
        pem = self._box.decrypt(row.private_encrypted)
        params: Any = {"kid": row.kid, "alg": row.alg, "use": "sig"}
        key: RSAKey | ECKey = (
            RSAKey.import_key(pem, params) if row.alg == "RS256" else ECKey.import_key(pem, params)
        )
        return LoadedKey(row.kid, row.alg, key, dict(row.public_jwk))

    @property
    def jwks_json(self) -> str:
        return self._jwks_json

    @property
    def algorithms(self) -> list[str]:
        return sorted({k.alg for k in self._published}) or ["RS256"]

    def sign(self, claims: dict[str, Any], typ: str | None = None) -> str:
        """Sign ``claims`` with the current key. Fails closed: no key, no token (S-FT-08)."""
        key = self._signing
        if key is None:
            raise RuntimeError("no active signing key; run `idp keys rotate`")
        header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
        if typ:
            header["typ"] = typ
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify a JWS against our own published keys only (never a key named by the token).

        :returns: (header, claims). Raises ``ValueError`` when the token is not ours or invalid.
        """
        try:
            decoded = jwt.decode(token, self._keyset, algorithms=list(SUPPORTED_ALGS))
        except Exception as exc:  # joserfc raises several unrelated types for bad input
            raise ValueError("invalid token") from exc
        return dict(decoded.header), dict(decoded.claims)
