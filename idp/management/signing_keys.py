"""``/api/v2/keys/signing``: the tenant's token signing keys, as Auth0 Management API v2's
signing keys (``read:signing_keys``, ``create:signing_keys``, ``update:signing_keys``).

A key is answered with Auth0's flags and dates: ``current`` (it signs now), ``previous`` (the
one it replaced, still in the JWKS until its tokens expire, OIDC Core §10.1.1), ``next`` (a
rotated-in key, already in the JWKS, signing from ``current_since``, a time to come),
``current_since``, ``current_until``, ``revoked``, ``revoked_at``; and idp's ``published``
(in the JWKS now) and ``unpublish_at`` (when a retired key leaves it). The flags follow the
clock: nothing has to run for a next key to become current or a retired one to drop out.
Never a private half.

Differences from Auth0, deliberate: idp's keys are bare JWKs (RFC 7517), with no X.509
certificate, so a key carries ``pem`` (its public key, SubjectPublicKeyInfo PEM) and ``alg``
instead of ``cert``/``pkcs7``, and ``fingerprint``/``thumbprint`` are a SHA-256 (Auth0: SHA-1)
of that public key's DER, colon-separated / plain uppercase hex as Auth0 writes them.
Rotation and revocation answer the key (its ``kid`` and ``pem`` among the rest; Auth0:
``{cert, kid}``), so that the revocation's ``ETag`` is the key's.

``POST /keys/signing/rotate`` stages a new key (``SIGNING_ALG``): published at once, it
becomes current ``KEY_PUBLISH_BEFORE_SIGNING_SECONDS`` later, when the current one retires,
published for ``ID_TOKEN_TTL``/``ACCESS_TOKEN_TTL`` + 5 minutes more (Auth0 rotates at once
and keeps a next key published ahead instead). One key is staged at a time (409).
``PUT /keys/signing/{kid}/revoke`` takes a key out of the JWKS at once (its tokens stop
verifying); the current key cannot be revoked (409: idp would have no key to sign with):
rotate, then revoke the previous one; a next key revoked before it signs leaves the current
one current. Other workers and instances see either within ``INVALIDATION_CHECK_SECONDS``
(with Redis; at their next use on one machine).
"""

from __future__ import annotations

import hashlib
from typing import Any

from joserfc.jwk import ECKey, RSAKey
from pydantic import Field
from sqlalchemy import select

from idp.core import clock
from idp.core.errors import NotFoundError
from idp.extensions import db, services
from idp.keys import service as keys
from idp.keys.models import SigningKey
from idp.management.registry import Item, route
from idp.management.schemas import iso
from idp.management.validation import Out

TAG = "keys"


# ---------------------------------------------------------------------------------- schemas
class SigningKeyOut(Out):
    kid: str
    alg: str = Field(description="RS256 or ES256.")
    pem: str = Field(description="The public key (SubjectPublicKeyInfo PEM); never private.")
    fingerprint: str = Field(description="SHA-256 of the public key's DER, AA:BB:... hex.")
    thumbprint: str = Field(description="The same digest, plain hex.")
    current: bool
    next: bool
    previous: bool
    current_since: str | None
    current_until: str | None = Field(None, description="When it stopped signing.")
    revoked: bool
    revoked_at: str | None = Field(None, description="Only on a revoked key.")
    published: bool = Field(description="idp extension: in the JWKS now.")
    unpublish_at: str | None = Field(
        None, description="idp extension: when a retired key leaves the JWKS."
    )


# ---------------------------------------------------------------------------------- helpers
def _public_key(row: SigningKey) -> RSAKey | ECKey:
    jwk: Any = dict(row.public_jwk)
    return RSAKey.import_key(jwk) if row.alg == "RS256" else ECKey.import_key(jwk)


def key_json(row: SigningKey, previous: str | None) -> dict[str, Any]:
    now = clock.now()
    status = keys.state(row, now)
    public = _public_key(row)
    pem = public.as_pem(private=False).decode()
    der = public.as_der(private=False)  # SubjectPublicKeyInfo
    digest = hashlib.sha256(der).hexdigest().upper()
    out: dict[str, Any] = {
        "kid": row.kid, "alg": row.alg, "pem": pem,
        "fingerprint": ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        "thumbprint": digest, "current": status == "current", "next": status == "next",
        "previous": row.kid == previous, "current_since": iso(keys.activation(row)),
        "revoked": row.revoked_at is not None,
        "published": status in ("next", "current", "retired"),
    }  # fmt: skip
    if row.retired_at is not None and status != "next":
        out["current_until"] = iso(row.retired_at)
    if row.unpublish_at is not None:
        out["unpublish_at"] = iso(row.unpublish_at)
    if row.revoked_at is not None:
        out["revoked_at"] = iso(row.revoked_at)
    return out


def _rows() -> list[SigningKey]:
    return list(db.session.scalars(select(SigningKey).order_by(SigningKey.created_at)))


def _previous(rows: list[SigningKey]) -> str | None:
    """The key the current one replaced: the last retired, still published."""
    now = clock.now()
    retired = [r for r in rows if keys.state(r, now) == "retired"]
    return max(retired, key=lambda r: (r.retired_at or 0, r.created_at)).kid if retired else None


def find(kid: str, lock: bool = False) -> SigningKey:
    row = db.session.get(SigningKey, kid, with_for_update=True if lock else None)
    if row is None:
        raise NotFoundError(f"no signing key {kid!r}")
    return row


def _one(kid: str, lock: bool = False) -> dict[str, Any]:
    return key_json(find(kid, lock), _previous(_rows()))


def _reload() -> None:
    """This worker signs and verifies with the new set now, the others (of every instance)
    after their next version check (``idp.core.versions``); and no client-credentials token
    signed by the old key is handed out again from the reuse window
    (``idp.oauth.token_reuse``), by any worker: after a revocation it would not verify, after a
    rotation (often the first step of one) new tokens should carry the new key."""
    svc = services()
    svc.keys.changed()  # and the other workers and instances (idp.core.versions)
    svc.token_reuse.revoked()


ITEM = Item(SigningKeyOut, lambda lock=False, kid="": _one(kid, lock))


# ---------------------------------------------------------------------------------- routes
@route("/keys/signing", scope="read:signing_keys", tag=TAG, summary="List signing keys",
       response=list[SigningKeyOut])  # fmt: skip
def list_signing_keys() -> list[dict[str, Any]]:
    """Every key, oldest first, revoked and unpublished ones included (Auth0 lists them)."""
    rows = _rows()
    previous = _previous(rows)
    return [key_json(r, previous) for r in rows]


@route("/keys/signing/{kid}", scope="read:signing_keys", tag=TAG,
       summary="Get a signing key", response=SigningKeyOut, item=ITEM)  # fmt: skip
def get_signing_key(kid: str) -> dict[str, Any]:
    """The ``ETag`` header is this version, for ``If-Match`` on revoke."""
    return _one(kid)


@route("/keys/signing/rotate", "POST", scope="create:signing_keys", tag=TAG,
       summary="Rotate the signing key", response=SigningKeyOut, status=201, errors=(409,),
       id_field="kid", after_commit=_reload)  # fmt: skip
def rotate_signing_key() -> dict[str, Any]:
    """A new key, published now, current after the overlap (409 while one is staged); the
    old one stays published until its tokens have expired."""
    config = services().config
    row = keys.rotate(db.session, services().box, str(config["SIGNING_ALG"]),
                      keys.publish_window(config), keys.publish_before(config))  # fmt: skip
    db.session.flush()
    return key_json(row, _previous(_rows()))


@route("/keys/signing/{kid}/revoke", "PUT", scope="update:signing_keys", tag=TAG,
       summary="Revoke a signing key", response=SigningKeyOut, item=ITEM, errors=(409,),
       id_field="kid", after_commit=_reload)  # fmt: skip
def revoke_signing_key(kid: str) -> dict[str, Any]:
    """Out of the JWKS at once; 409 for the current key (rotate first)."""
    row = keys.revoke(db.session, kid)
    db.session.flush()
    return key_json(row, _previous(_rows()))
