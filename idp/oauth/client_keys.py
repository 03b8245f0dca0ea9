"""A client's public keys (OIDC Registration §2 ``jwks`` / ``jwks_uri``, RFC 7591 §2), which
verify its client assertions (RFC 7523 §3, OIDC Core §9 ``private_key_jwt``) and its request
objects (RFC 9101 §6.2).

``jwks`` is registered by value; ``jwks_uri`` is fetched through idp's one outbound client
(:mod:`idp.core.http`: https, public addresses only unless the operator allows a network,
no redirects, a timeout and a size cap), cached per worker for ``CLIENT_JWKS_CACHE_SECONDS``
and fetched again when a JWT names a ``kid`` the cached set lacks (the client rotated its
keys, OIDC Core §10.1.1), at most once every ``CLIENT_JWKS_REFRESH_SECONDS``, so that junk
``kid`` values cannot make idp hammer the client's server.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from joserfc.jws import JWSRegistry

from idp.core.errors import ValidationError
from idp.core.http import FetchRefused, fetch, parse_networks
from idp.extensions import services

# RFC 7518 §3.1 (and RFC 8037 §3.1): what a key pair signs with; HMAC is client_secret_jwt's
ASYMMETRIC_ALGS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
HMAC_ALGS = ("HS256", "HS384", "HS512")
_KTY_OF = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
MAX_KEYS = 20
MAX_JWKS_BYTES = 64 * 1024
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}  # RFC 7518 §6.2.2, §6.3.2

# RFC 9864 deprecates the JWS name "EdDSA" (for "Ed25519"), and joserfc warns at each use of it.
# Clients still sign with it, and idp takes it where its metadata lists it (client assertions,
# request objects, DPoP proofs): the warning went to stderr, and where warnings are errors
# (python -W error, the tests) a request signed with it was a 500. Set once at import, process
# wide: a warnings filter around each verification would not be thread-safe.
JWSRegistry.algorithms["EdDSA"].security_warning = None


class KeysUnavailable(Exception):
    """No key to verify with: none registered, the jwks_uri unreachable, or no key matches."""


def validate_jwks(value: Any) -> dict[str, Any]:
    """A JWK Set (RFC 7517 §5) of public keys only: a private or symmetric key sent here would
    be a secret stored in the clear, and an ``oct`` key would let HMAC stand in for a
    signature (the alg-confusion attack)."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ValidationError('jwks must be a JWK Set: {"keys": [...]}')
    keys = value["keys"]
    if not 1 <= len(keys) <= MAX_KEYS or len(json.dumps(value)) > MAX_JWKS_BYTES:
        raise ValidationError(f"jwks must hold between 1 and {MAX_KEYS} keys (at most 64 KiB)")
    for raw in keys:
        if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC", "OKP"):
            raise ValidationError("jwks holds public keys only (RSA, EC or OKP), no 'oct' key")
        if _PRIVATE_MEMBERS & set(raw):
            raise ValidationError("jwks must hold public keys only: a private key was sent")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # joserfc warns of weak keys: refuse them
            imported = _import_set(value)
    except (JoseError, ValueError, TypeError, KeyError, AttributeError, Warning) as exc:
        raise ValidationError(f"jwks holds a key that is not a valid JWK: {exc}") from None
    kids = [k.kid for k in imported.keys if k.kid]
    if len(kids) != len(set(kids)):
        raise ValidationError("jwks has two keys with the same kid")
    return {"keys": [k.as_dict(private=False) for k in imported.keys]}


def _import_set(value: Any) -> KeySet:
    return KeySet.import_key_set(value)


def validate_jwks_uri(uri: str | None) -> str | None:
    """An absolute https URL (http on loopback only, for development) without credentials or a
    fragment; where it may be fetched from is decided again at each fetch (idp.core.http)."""
    if not uri:
        return None
    parts = urlsplit(uri)
    if (
        len(uri) > 2048
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.fragment
        or "#" in uri
        or any(ch.isspace() for ch in uri)
        or (parts.scheme == "http" and parts.hostname not in _LOOPBACK)
    ):
        raise ValidationError(f"jwks_uri must be an https URL without a fragment: {uri!r}")
    return uri


@dataclass
class _Fetched:
    uri: str
    keys: KeySet
    at: float


_fetched: dict[str, _Fetched] = {}  # client_id -> the last good fetch of its jwks_uri
_by_value: dict[str, tuple[str, KeySet]] = {}  # client_id -> (its jwks as JSON, imported)
_lock = threading.Lock()


def key_set(client: Any, kid: str | None) -> KeySet:
    """The client's keys; for a ``jwks_uri`` client, fetched again when ``kid`` is unknown."""
    if client.jwks:
        as_json = json.dumps(client.jwks, sort_keys=True)
        hit = _by_value.get(client.client_id)
        if hit is None or hit[0] != as_json:
            hit = (as_json, _import_set(client.jwks))
            with _lock:
                _by_value[client.client_id] = hit
        return hit[1]
    if not client.jwks_uri:
        raise KeysUnavailable("the client registered no jwks nor jwks_uri")
    cfg = services().config
    now = time.monotonic()
    hit_uri = _fetched.get(client.client_id)
    if hit_uri is not None and hit_uri.uri != client.jwks_uri:
        hit_uri = None  # the client registered another jwks_uri since
    fresh = hit_uri is not None and now - hit_uri.at < cfg["CLIENT_JWKS_CACHE_SECONDS"]
    unknown_kid = hit_uri is not None and kid is not None and not _has_kid(hit_uri.keys, kid)
    may_refetch = hit_uri is None or now - hit_uri.at >= cfg["CLIENT_JWKS_REFRESH_SECONDS"]
    if hit_uri is not None and fresh and not (unknown_kid and may_refetch):
        return hit_uri.keys
    if hit_uri is not None and not may_refetch:
        return hit_uri.keys
    try:
        keys = _fetch(client.jwks_uri)
    except KeysUnavailable:
        if hit_uri is not None:  # the client's server is down: the keys we had still verify
            return hit_uri.keys
        raise
    with _lock:
        if len(_fetched) > 10_000:
            _fetched.clear()
        _fetched[client.client_id] = _Fetched(client.jwks_uri, keys, now)
    return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _fetch(uri: str) -> KeySet:
    cfg = services().config
    host = urlsplit(uri).hostname or ""
    try:
        answer = fetch(
            "GET",
            uri,
            allowed_hosts=[host],
            allowed_networks=parse_networks(cfg["CLIENT_JWKS_ALLOW_NETWORKS"]),
            headers={"Accept": "application/json, application/jwk-set+json"},
            timeout=float(cfg["CLIENT_JWKS_TIMEOUT_SECONDS"]),
            max_body=MAX_JWKS_BYTES,
        )
    except FetchRefused as exc:
        raise KeysUnavailable(f"the client's jwks_uri could not be fetched: {exc}") from None
    if answer.status != 200:
        raise KeysUnavailable(f"the client's jwks_uri answered {answer.status}")
    try:
        return _import_set(validate_jwks(json.loads(answer.body)))
    except (ValueError, ValidationError) as exc:
        raise KeysUnavailable(f"the client's jwks_uri holds no valid JWK Set: {exc}") from None


def verification_key(client: Any, header: dict[str, Any]) -> Key:
    """The key a JWT's header names (``kid``), or the one key of the algorithm's type when the
    header names none (RFC 7515 §4.1.4: ``kid`` is optional)."""
    alg = str(header.get("alg", ""))
    kid = header.get("kid")
    kid = kid if isinstance(kid, str) and kid else None
    keys = key_set(client, kid)
    if kid is not None:
        for key in keys.keys:
            if key.kid == kid:
                return key
        raise KeysUnavailable(f"no key of the client has kid {kid!r}")
    kty = _KTY_OF.get(alg[:2])
    candidates = [k for k in keys.keys if k.key_type == kty]
    if len(candidates) != 1:
        raise KeysUnavailable("the JWT names no kid and the client has several keys of its type")
    return candidates[0]
