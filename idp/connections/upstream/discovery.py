"""An OpenID provider's metadata (OIDC Discovery 1.0 §4) and signing keys (RFC 7517), cached
per process.

The metadata is fetched from ``<issuer>/.well-known/openid-configuration`` and its ``issuer``
must be the configured one exactly (§4.3: otherwise a document could speak for another
provider). Both caches live :data:`TTL` seconds; a token signed with a key the cached JWKS does
not hold refetches the JWKS (the upstream rotated its keys, OIDC Core §10.1.1), but at most
once per :data:`MIN_REFETCH` seconds per JWKS, so a stream of forged ``kid`` values cannot make
idp hammer the upstream. Times come from ``idp.core.clock`` so tests move them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from idp.connections.upstream.contract import Settings, UpstreamError
from idp.connections.upstream.transport import get_json, hosts_of
from idp.core import clock

TTL = 600
MIN_REFETCH = 5
WELL_KNOWN = "/.well-known/openid-configuration"

_lock = threading.Lock()
_metadata: dict[str, tuple[int, Metadata]] = {}
_jwks: dict[str, _Keys] = {}


@dataclass(frozen=True)
class Metadata:
    """What idp uses of a provider's metadata (OIDC Discovery §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_algs: tuple[str, ...]
    iss_parameter_required: bool  # RFC 9207 §3: authorization_response_iss_parameter_supported
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts idp may call for this provider: the issuer's and its endpoints'."""
        return hosts_of([self.issuer, self.token_endpoint, self.jwks_uri, self.userinfo_endpoint])


@dataclass
class _Keys:
    keys: list[dict[str, Any]]
    fetched_at: int
    refetched_at: int = -MIN_REFETCH


def clear() -> None:
    """Forget every cached document (tests)."""
    with _lock:
        _metadata.clear()
        _jwks.clear()


def _bad(detail: str) -> UpstreamError:
    return UpstreamError(
        "bad_discovery", "The sign-in provider's configuration could not be used.", detail
    )


def _endpoint(document: dict[str, Any], name: str, issuer: str, required: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
        raise _bad(f"discovery: {name} is missing or not an http(s) URL")
    # An https provider announcing a plain-http endpoint would send codes or tokens in clear.
    if issuer.startswith("https://") and not value.startswith("https://"):
        raise _bad(f"discovery: {name} is not https")
    return value


def _parse(issuer: str, document: Any) -> Metadata:
    if not isinstance(document, dict):
        raise _bad("discovery: not a JSON object")
    if document.get("issuer") != issuer:
        raise UpstreamError(
            "issuer_mismatch", "The sign-in provider's configuration names another issuer.",
            "discovery: the document's issuer is not the configured issuer",
        )  # fmt: skip
    algs = document.get("id_token_signing_alg_values_supported", ["RS256"])
    if not isinstance(algs, list) or not all(isinstance(a, str) for a in algs):
        raise _bad("discovery: id_token_signing_alg_values_supported is not a list")
    authorization = _endpoint(document, "authorization_endpoint", issuer, True)
    token = _endpoint(document, "token_endpoint", issuer, True)
    jwks = _endpoint(document, "jwks_uri", issuer, True)
    assert authorization and token and jwks  # required above
    return Metadata(
        issuer=issuer, authorization_endpoint=authorization, token_endpoint=token, jwks_uri=jwks,
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", issuer, False),
        id_token_algs=tuple(algs),
        iss_parameter_required=document.get("authorization_response_iss_parameter_supported")
        is True,
        raw=document,
    )  # fmt: skip


def metadata(issuer: str, settings: Settings) -> Metadata:
    """The provider's metadata, from the cache when younger than :data:`TTL`."""
    now = clock.now()
    with _lock:
        cached = _metadata.get(issuer)
    if cached is not None and now - cached[0] < TTL:
        return cached[1]
    document = get_json(
        issuer.rstrip("/") + WELL_KNOWN, hosts=hosts_of([issuer]), settings=settings,
        reason="bad_discovery", what="discovery",
    )  # fmt: skip
    parsed = _parse(issuer, document)
    with _lock:
        _metadata[issuer] = (now, parsed)
    return parsed


def _fetch_keys(meta: Metadata, settings: Settings) -> list[dict[str, Any]]:
    document = get_json(
        meta.jwks_uri, hosts=meta.hosts, settings=settings, reason="bad_jwks", what="jwks"
    )
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise UpstreamError(
            "bad_jwks", "The sign-in provider's keys could not be read.", "jwks: no keys list"
        )
    return [k for k in keys if isinstance(k, dict)]


def keys(meta: Metadata, settings: Settings, *, unknown_kid: bool = False) -> list[dict[str, Any]]:
    """The provider's public keys (JWKS). ``unknown_kid``: the cached set lacks the key a token
    names, so fetch again unless that was done less than :data:`MIN_REFETCH` seconds ago."""
    now = clock.now()
    with _lock:
        cached = _jwks.get(meta.jwks_uri)
        fresh = cached is not None and now - cached.fetched_at < TTL
        if cached is not None and fresh and unknown_kid:
            if now - cached.refetched_at < MIN_REFETCH:
                return cached.keys  # rotated a moment ago already: do not ask again
            cached.refetched_at = now  # claimed first: concurrent misses do not fetch too
        elif cached is not None and fresh:
            return cached.keys
    fetched = _fetch_keys(meta, settings)
    with _lock:
        _jwks[meta.jwks_uri] = _Keys(
            fetched, now, now if unknown_kid else (cached.refetched_at if cached else -MIN_REFETCH)
        )
    return fetched
