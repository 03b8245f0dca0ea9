"""DPoP proofs (RFC 9449): their verification (§4.3), server nonces (§8, §9) and the replay
cache of their ``jti`` (§11.1). No Flask here: ``idp.oauth.dpop_http`` applies this to the
token endpoint and to userinfo.

JOSE is joserfc's: the signature is checked with the key in the proof's own ``jwk`` header,
restricted to the asymmetric algorithms we advertise, so ``none`` and the HMAC family never
verify. A proof is bound to its key by the key's RFC 7638 SHA-256 thumbprint (``jkt``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, thumbprint
from joserfc.jws import JWSRegistry
from sqlalchemy import Table, bindparam, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

# §5.1 dpop_signing_alg_values_supported: asymmetric algorithms only (§4.2 forbids MACs).
SIGNING_ALGS = (
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA",
    "Ed25519",
)  # fmt: skip
# Members of a private or symmetric JWK: a proof's ``jwk`` must be a public key (§4.2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 §3.2: the required members a thumbprint covers, per key type
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                       "OKP": ("crv", "kty", "x")}  # fmt: skip
_MAX_PROOF = 8192
_MAX_JTI = 256
# joserfc's default 512-byte header limit is below an RSA key's jwk: allow one of 4096 bits.
_REGISTRY = JWSRegistry(algorithms=SIGNING_ALGS)
_REGISTRY.max_header_length = 4096


class ProofError(Exception):
    """A refused proof: ``error`` is ``invalid_dpop_proof`` or ``use_dpop_nonce`` (§12.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def invalid(description: str) -> ProofError:
    return ProofError("invalid_dpop_proof", description)


@dataclass(frozen=True)
class Proof:
    """A verified proof: the thumbprint of its key, its ``jti`` and ``iat``, its nonce."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None


def b64_sha256(value: str) -> str:
    """base64url SHA-256 without padding: ``ath`` (§4.2) and ``jkt`` (RFC 7638)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalize_url(url: str) -> str | None:
    """``htu`` as compared (§4.3 item 9): without query and fragment, the scheme and host in
    lower case, the default port dropped (RFC 3986 §6.2.2-§6.2.3); None if not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def _segment(token: str, index: int) -> dict[str, Any]:
    raw = token.split(".")[index]
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise invalid("The DPoP proof is not a JWT.") from None
    if not isinstance(value, dict):
        raise invalid("The DPoP proof is not a JWT.")
    return value


def _public_key(header: dict[str, Any]) -> Any:
    """§4.3 items 4-6: an asymmetric ``alg`` we support and a public ``jwk`` to verify with."""
    alg = header.get("alg")
    if alg not in SIGNING_ALGS:
        raise invalid(f"DPoP proof alg must be one of {', '.join(SIGNING_ALGS)}.")
    if str(header.get("typ", "")) != "dpop+jwt":
        raise invalid("DPoP proof typ must be dpop+jwt.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") not in {"RSA", "EC", "OKP"}:
        raise invalid("DPoP proof jwk must be an asymmetric public key.")
    if _PRIVATE_MEMBERS & set(jwk):
        raise invalid("DPoP proof jwk must not contain a private key.")
    try:
        return JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise invalid("DPoP proof jwk is not a usable key.") from None


def verify_proof(
    values: Sequence[str],
    *,
    method: str,
    url: str,
    now: int,
    iat_window: int,
    access_token: str | None = None,
) -> Proof:
    """§4.3 checks 1-9 and 11-12 on the ``DPoP`` header values of one request; the nonce
    (item 10) and the replay check are the caller's (:class:`Nonces`, :class:`ReplayCache`)."""
    if len(values) != 1:
        raise invalid("Send exactly one DPoP header.")
    token = values[0].strip()
    if not token or len(token) > _MAX_PROOF or token.count(".") != 2:
        raise invalid("The DPoP proof is not a JWT.")
    header = _segment(token, 0)
    key = _public_key(header)
    try:
        claims = json.loads(jws.deserialize_compact(token, key, [header["alg"]], _REGISTRY).payload)
    except (JoseError, ValueError, TypeError, UnicodeDecodeError):
        raise invalid("The DPoP proof signature does not verify.") from None
    if not isinstance(claims, dict):
        raise invalid("The DPoP proof payload is not a JSON object.")
    jti, htm, htu, iat = (claims.get(k) for k in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise invalid("DPoP proof jti is missing.")
    if htm != method:
        raise invalid("DPoP proof htm does not match the request method.")
    if not isinstance(htu, str) or normalize_url(htu) != normalize_url(url):
        raise invalid("DPoP proof htu does not match the request URL.")
    if not isinstance(iat, int) or isinstance(iat, bool) or abs(now - iat) > iat_window:
        raise invalid("DPoP proof iat is not recent enough.")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise invalid("DPoP proof nonce must be a string.")
    if access_token is not None and not hmac.compare_digest(
        str(claims.get("ath", "")), b64_sha256(access_token)
    ):
        raise invalid("DPoP proof ath does not match the access token.")
    # From the header's members, which the import checked: joserfc's key.thumbprint() exports
    # the key again, half the cost of a proof check.
    jwk = header["jwk"]
    jkt = thumbprint({name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]})
    return Proof(jkt, jti, iat, nonce)


class Nonces:
    """Stateless server nonces (§8.1): an HMAC, keyed from the instance secret, of the number
    of the current time window, so that every worker and instance issues and accepts the same
    value without sharing state. A nonce is accepted in its window and the next one."""

    def __init__(self, instance_secret: str, window_seconds: int) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp dpop nonce v1")
        self._key = hkdf.derive(instance_secret.encode())
        self.window = max(int(window_seconds), 1)

    def _for(self, step: int) -> str:
        mac = hmac.new(self._key, step.to_bytes(8, "big", signed=True), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def current(self, now: int) -> str:
        return self._for(now // self.window)

    def accepts(self, value: str, now: int) -> bool:
        step = now // self.window
        return any(hmac.compare_digest(value, self._for(s)) for s in (step, step - 1))


class ReplayCache(Protocol):
    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False if it is recorded already."""


def replay_key(proof: Proof) -> str:
    """jti values are unique per key (§11.1): one key's jti cannot block another's."""
    return hashlib.sha256(f"dpop:{proof.jkt}:{proof.jti}".encode()).hexdigest()


class SqlReplayCache:
    """One conditional INSERT into a table with a unique key, in the request's transaction: of
    concurrent uses of one proof exactly one inserts (PostgreSQL makes the others wait for its
    commit, SQLite's BEGIN IMMEDIATE serialises). An expired row with the same key is taken
    over by the same statement; a few requests in a hundred also sweep expired rows."""

    def __init__(self, table: Table, session: Callable[[], Session]) -> None:
        self._table = table
        self._session = session
        self._upserts: dict[str, Any] = {}  # dialect -> the statement, built once

    def _upsert(self, dialect: str) -> Any:
        """Built once with bound parameters: SQLAlchemy's compiled cache then serves every
        proof (building it per request cost more than running it)."""
        stmt = self._upserts.get(dialect)
        if stmt is None:
            table = self._table
            insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
            rows = insert(table).values(
                key_hash=bindparam("key_hash"), expires_at=bindparam("expires_at")
            )
            stmt = rows.on_conflict_do_update(
                index_elements=[table.c.key_hash],
                set_={"expires_at": rows.excluded.expires_at},
                where=table.c.expires_at <= bindparam("now"),
            ).returning(table.c.key_hash)  # (psycopg's rowcount of an upsert is -1)
            self._upserts[dialect] = stmt
        return stmt

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        session = self._session()
        stmt = self._upsert(session.get_bind().dialect.name)
        params = {"key_hash": key, "expires_at": expires_at, "now": now}
        inserted = session.connection().execute(stmt, params).scalar() is not None
        if inserted and secrets.randbelow(50) == 0:
            session.execute(delete(self._table).where(self._table.c.expires_at <= now))
        return inserted


class RedisReplayCache:
    """The same on Redis (``SET NX EX``), when ``REDIS_URL`` is configured."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        return bool(self._redis.set(f"idp:dpop:{key}", 1, nx=True, ex=max(expires_at - now, 1)))
