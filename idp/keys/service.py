"""Signing keys: creation, rotation, the JWKS (RFC 7517) and JWT signing/verification.

Keys are cached per worker for ``KEY_CACHE_SECONDS`` so signing and the JWKS survive a short
database outage. Rotation publishes the new key at once but has it sign only
``KEY_PUBLISH_BEFORE_SIGNING_SECONDS`` later, and keeps retired keys in the JWKS until every
token they signed has expired (OIDC Core §10.1.1); then they drop out by themselves.

An RS256 key always signs beside an ES256 one: OIDC Discovery 1.0 §3 requires RS256 among the
ID token algorithms and OIDC Registration §2 makes it the default ``id_token_signed_response_alg``,
so a tenant whose tokens are ES256 (``SIGNING_ALG``, ``idp keys rotate --alg ES256``) still
signs a client's ID tokens with RS256 unless the client registered ES256. Keys are made and
rotated as a set: the tenant's key (the access tokens' signer) and, when that is not RS256, an
RS256 companion with the same dates.
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

from idp.core import clock, tracing
from idp.core.crypto import SecretBox, random_identifier
from idp.core.errors import ConflictError, NotFoundError
from idp.core.versions import KEYS, Versions
from idp.keys.models import SigningKey

SUPPORTED_ALGS = ("RS256", "ES256")
# OIDC Discovery 1.0 §3 ("RS256 MUST be included"), OIDC Registration §2 (the default)
ID_TOKEN_DEFAULT_ALG = "RS256"  # noqa: S105 - an algorithm name


def create_key(session: Session, box: SecretBox, alg: str = "RS256") -> SigningKey:
    """Generate a key pair, encrypt its private half with the instance secret, and store it."""
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SUPPORTED_ALGS}")
    kid = random_identifier(16)  # never a leading '-', which `idp keys revoke KID` would misread
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


def create_keys(session: Session, box: SecretBox, alg: str = "RS256") -> SigningKey:
    """A tenant's first key set: a key of ``alg`` (returned) and, unless that is RS256, an
    RS256 companion that signs ID tokens for clients that ask for no algorithm."""
    if alg != ID_TOKEN_DEFAULT_ALG:
        create_key(session, box, ID_TOKEN_DEFAULT_ALG)
    return create_key(session, box, alg)


def _primary(row_alg: str, activate_at: int) -> tuple[int, bool]:
    """Sort key of the signing keys: the newest wins, and of one set the tenant's key wins
    over its RS256 companion (they share their dates)."""
    return activate_at, row_alg != ID_TOKEN_DEFAULT_ALG


def activation(row: SigningKey) -> int:
    """When ``row`` signs from (its creation for keys made before staged rotation)."""
    return row.activate_at if row.activate_at is not None else row.created_at


def state(row: SigningKey, now: int) -> str:
    """``next`` (published, not signing yet), ``current``, ``retired`` (published for the
    tokens it signed, OIDC Core §10.1.1), ``unpublished`` (out of the JWKS) or ``revoked``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.unpublish_at is not None and row.unpublish_at <= now:
        return "unpublished"
    if activation(row) > now:
        return "next"
    if row.retired_at is not None and row.retired_at <= now:
        return "retired"
    return "current"


def rotate(
    session: Session, box: SecretBox, alg: str, keep_published_for: int, publish_before: int = 0
) -> SigningKey:
    """Stage a new key: published in the JWKS now, signing ``publish_before`` seconds later,
    when the current key retires (still published ``keep_published_for`` more seconds, until
    every token it signed has expired). The overlap lets relying parties whose cached JWKS
    predates the new key fetch it before a token signed by it reaches them (OIDC Core
    §10.1.1). With no current key (a fresh or fully revoked instance) the new key signs at
    once. One set is staged at a time (:class:`ConflictError`: revoke it to start over).
    A set is the ``alg`` key (returned) and, unless ``alg`` is RS256, a new RS256 companion
    with the same dates: every key is replaced, the ID tokens' RS256 one too."""
    now = clock.now()
    rows = list(session.scalars(select(SigningKey).with_for_update()))
    staged = [r for r in rows if state(r, now) == "next"]
    if staged:
        raise ConflictError(
            f"{staged[0].kid} is already staged (it signs from {activation(staged[0])}): "
            "wait for it, or revoke it and rotate again"
        )
    has_current = any(state(r, now) == "current" for r in rows)
    start = now + max(publish_before, 0) if has_current else now
    for old in rows:
        if old.retired_at is None and old.revoked_at is None:
            old.retired_at = start
            old.unpublish_at = start + keep_published_for
    row = create_keys(session, box, alg)
    for new in session.new:
        if isinstance(new, SigningKey) and new.activate_at is None:
            new.activate_at = start
    return row


def publish_window(config: dict[str, Any]) -> int:
    """How long a retired key stays in the JWKS: until every token it signed has expired
    (OIDC Core §10.1.1), with a margin for clock skew and caches."""
    return max(int(config["ID_TOKEN_TTL"]), int(config["ACCESS_TOKEN_TTL"])) + 300


def publish_before(config: dict[str, Any]) -> int:
    """How long a rotated-in key is published before it signs."""
    return max(int(config["KEY_PUBLISH_BEFORE_SIGNING_SECONDS"]), 0)


def jwks_max_age(config: dict[str, Any]) -> int:
    """The JWKS answer's ``max-age``: a relying party that cached it just before a rotation
    must have fetched it again (seeing the new key) before that key signs, so the cache plus
    this worker's own key cache must fit in the overlap; never more than
    ``JWKS_MAX_AGE_SECONDS``, which also bounds how long a revoked key lingers in caches.
    Without an overlap (0: rotations sign at once) nothing fits in it: relying parties then
    rely on fetching the JWKS again when they meet an unfamiliar ``kid`` (OIDC Core
    §10.1.1), and the answer keeps ``JWKS_MAX_AGE_SECONDS``."""
    ceiling = int(config["JWKS_MAX_AGE_SECONDS"])
    overlap = publish_before(config)
    if overlap == 0:
        return ceiling
    return max(0, min(ceiling, overlap - int(float(config["KEY_CACHE_SECONDS"]))))


def current_key(session: Session) -> SigningKey | None:
    """The tenant's key that signs now (the newest current one; of a set, not the RS256
    companion): its ``alg`` is the access tokens'."""
    now = clock.now()
    rows = [r for r in session.scalars(select(SigningKey)) if state(r, now) == "current"]
    return max(rows, key=lambda r: _primary(r.alg, activation(r)), default=None)


def revoke(session: Session, kid: str) -> SigningKey:
    """Take a key out of the JWKS now, not when its tokens expire: what it signed stops
    verifying (a suspected leak). Never the signing key, which would leave idp unable to
    sign (:class:`ConflictError`; rotate first). A staged key revoked before it signs gives
    the current key its place back (it no longer retires), and takes its set with it (the
    RS256 companion staged with it, or the key it accompanies). Revoking twice changes
    nothing."""
    row = session.get(SigningKey, kid, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no signing key {kid!r}")
    if row.revoked_at is not None:
        return row
    now = clock.now()
    current = state(row, now)
    if current == "current":
        raise ConflictError(f"{kid} is the current signing key: rotate first, then revoke it")
    if current == "next":
        start = activation(row)
        for other in session.scalars(select(SigningKey).where(SigningKey.kid != kid)):
            if other.retired_at == start and state(other, now) == "current":
                other.retired_at = other.unpublish_at = None
            elif state(other, now) == "next" and activation(other) == start:
                other.revoked_at = other.unpublish_at = now
    row.revoked_at = now
    row.unpublish_at = min(row.unpublish_at or now, now)
    return row


class NoSigningKeyError(RuntimeError):
    """No key signs at this time: none made yet, every one revoked, or the clock moved back
    before the activation of the only keys there are. Answered 503 (S-FT-08: no key, no
    token), never a token signed with a key that is not current."""

    def __init__(self, now: int, alg: str | None = None) -> None:
        super().__init__(
            f"no {alg + ' ' if alg else ''}signing key is active at {now}: run `idp keys "
            "rotate`, or check the clock (a key made later than the time now does not sign yet)"
        )


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    key: RSAKey | ECKey
    public_jwk: dict[str, str]
    activate_at: int = 0
    retired_at: int | None = None
    unpublish_at: int | None = None

    def published(self, now: int) -> bool:
        return self.unpublish_at is None or now < self.unpublish_at

    def signing(self, now: int) -> bool:
        return self.activate_at <= now and (self.retired_at is None or now < self.retired_at)


class KeyRing:
    """The worker's view of the signing keys. Which key signs and which are published is
    decided at each use from the keys' dates, so a staged key starts signing and a retired
    one leaves the JWKS on time even between two reloads."""

    def __init__(
        self, box: SecretBox, cache_seconds: float, session: Callable[[], Session],
        versions: Versions | None = None,
    ) -> None:  # fmt: skip
        self._session = session
        self._box = box
        self._cache_seconds = cache_seconds
        self._cond = threading.Condition()
        self._reading = False  # a thread is reading the database
        self._started = 0  # reloads started, numbered
        self._done = 0  # the number of the last reload installed
        self._loaded_at = -1e18
        self._keys: list[LoadedKey] = []
        self._views: dict[tuple[str, ...], tuple[KeySet, str]] = {}
        self._versions = versions
        self._seen = ""

    def refresh(self, force: bool = False) -> None:
        """Reload from the database when the cache is older than ``cache_seconds`` or the
        ``keys`` version moved (a rotation or revocation anywhere, :mod:`idp.core.versions`);
        ``force``: a reload that reads the database after this call began (``changed``).

        One thread reads at a time, outside the lock, so the others never queue behind a
        database round trip (or an outage's timeout). While it reads, a thread that finds the
        ring merely old goes on with it; one that saw the version move waits, since the ring
        may hold a key revoked since, and returns only once a reload has read the database
        under that version (or reads itself). The version is taken before the read, so a
        change committed during a read leaves the ring stale for the next call."""
        version = self._versions.current(KEYS) if self._versions is not None else ""
        moved = version != self._seen
        if not force and not moved and not self._old():
            return
        with self._cond:
            arrival = self._started
            while self._reading:
                if not force and not moved:
                    return  # another thread reloads: keep using the ring as it is
                self._cond.wait()
            if (self._done > arrival) if force else (self._seen == version and not self._old()):
                return  # a reload that covers this call finished meanwhile
            self._reading, self._started = True, self._started + 1
            number = self._started
        loaded: list[LoadedKey] | None = None
        try:
            loaded = self._read()
        finally:
            with self._cond:
                if loaded is not None:
                    self._keys, self._views, self._seen = loaded, {}, version
                    self._loaded_at, self._done = time.monotonic(), number
                self._reading = False
                self._cond.notify_all()

    def _old(self) -> bool:
        return time.monotonic() - self._loaded_at >= self._cache_seconds

    def _rows(self) -> list[SigningKey]:
        return list(self._session().scalars(select(SigningKey).order_by(SigningKey.created_at)))

    def _read(self) -> list[LoadedKey]:
        """The keys to use, from the database (no lock held)."""
        now = clock.now()
        known = {k.kid: k for k in self._keys}
        loaded: list[LoadedKey] = []
        for row in self._rows():
            if state(row, now) in ("revoked", "unpublished"):
                continue
            # Parsing an RSA private key costs tens of milliseconds (OpenSSL checks it):
            # keys already loaded are kept, only new ones are decrypted and parsed.
            found = known.get(row.kid)
            key = found.key if found is not None else self._load(row)
            loaded.append(
                LoadedKey(row.kid, row.alg, key, dict(row.public_jwk), activation(row),
                          row.retired_at, row.unpublish_at)
            )  # fmt: skip
        return loaded

    @property
    def version(self) -> str:
        """The ``keys`` version this ring was loaded under (it moves with a reload that a
        rotation elsewhere caused): what was signed under another may use a stale key."""
        return self._seen

    def changed(self) -> None:
        """Keys were rotated or revoked (after the commit): reload here now, and tell the
        other workers and instances."""
        if self._versions is not None:
            self._versions.bump(KEYS)
        self.refresh(force=True)

    def _load(self, row: SigningKey) -> RSAKey | ECKey:
        pem = self._box.decrypt(row.private_encrypted)
        params: Any = {"kid": row.kid, "alg": row.alg, "use": "sig"}
        if row.alg == "RS256":
            return RSAKey.import_key(pem, params)
        return ECKey.import_key(pem, params)

    def _published(self) -> list[LoadedKey]:
        now = clock.now()
        return [k for k in self._keys if k.published(now)]

    def _view(self) -> tuple[KeySet, str]:
        """The published keys as a key set and as the JWKS document, memoised per set."""
        published = self._published()
        kids = tuple(k.kid for k in published)
        view = self._views.get(kids)
        if view is None:
            view = (KeySet([k.key for k in published]),
                    json.dumps({"keys": [k.public_jwk for k in published]}))  # fmt: skip
            self._views[kids] = view
        return view

    @property
    def jwks_json(self) -> str:
        return self._view()[1]

    @property
    def algorithms(self) -> list[str]:
        """What this instance signs with now (OIDC Discovery §3
        ``id_token_signing_alg_values_supported``, and what a client may register as its
        ``id_token_signed_response_alg``): the algorithms of the keys that sign, never those of
        keys only published (retired, or staged not signing yet)."""
        now = clock.now()
        return sorted({k.alg for k in self._keys if k.signing(now)}) or [ID_TOKEN_DEFAULT_ALG]

    def signing_key(self, alg: str | None = None) -> LoadedKey | None:
        """The tenant's key that signs now, or the newest that signs with ``alg``."""
        now = clock.now()
        signing = [k for k in self._keys if k.signing(now) and alg in (None, k.alg)]
        return max(signing, key=lambda k: _primary(k.alg, k.activate_at), default=None)

    def id_token_alg(self, registered: str | None) -> str | None:
        """The algorithm of a client's ID tokens (and Logout Tokens): its registered
        ``id_token_signed_response_alg``, else RS256 (OIDC Registration §2). ``None`` (the
        tenant's key) only on an instance upgraded with no RS256 key yet, until its next
        rotation makes one: better an ES256 ID token than none."""
        if registered:
            return registered
        return ID_TOKEN_DEFAULT_ALG if self.signing_key(ID_TOKEN_DEFAULT_ALG) else None

    def sign(self, claims: dict[str, Any], typ: str | None = None, alg: str | None = None) -> str:
        """Sign ``claims`` with the current key (of ``alg`` if given; else the tenant's, the
        access tokens' key). Fails closed: no key, no token (S-FT-08)."""
        key = self.signing_key(alg)
        if key is None:
            raise NoSigningKeyError(clock.now(), alg)
        header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
        if typ:
            header["typ"] = typ
        with tracing.span("token.sign", {"jwt.alg": key.alg, "jwt.typ": typ or "JWT"}):
            return jwt.encode(header, claims, key.key, algorithms=[key.alg])

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify a JWS against our own published keys only (never a key named by the token).

        :returns: (header, claims). Raises ``ValueError`` when the token is not ours or invalid.
        """
        try:
            decoded = jwt.decode(token, self._view()[0], algorithms=list(SUPPORTED_ALGS))
        except Exception as exc:  # joserfc raises several unrelated types for bad input
            raise ValueError("invalid token") from exc
        return dict(decoded.header), dict(decoded.claims)
