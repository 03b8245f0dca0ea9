"""DPoP proofs for the tests (RFC 9449 §4.2), made with joserfc, with every field overridable
so that a test can forge exactly the defect it attacks."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import requests
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey


def new_key() -> ECKey:
    return ECKey.generate_key("P-256")


def thumbprint(key: Any) -> str:
    return str(key.thumbprint())


def ath(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def proof(
    key: Any,
    method: str,
    url: str,
    *,
    alg: str = "ES256",
    typ: str | None = "dpop+jwt",
    jwk: dict[str, Any] | None = None,
    header_extra: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A signed proof for ``method url``; ``claims`` override or add (None removes one)."""
    header: dict[str, Any] = {"alg": alg, "jwk": jwk or key.as_dict(private=False)}
    if typ is not None:
        header["typ"] = typ
    header.update(header_extra or {})
    header = {k: v for k, v in header.items() if v is not None}
    payload: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jws.serialize_compact(header, json.dumps(payload).encode(), key, algorithms=[alg])


def unsigned_proof(method: str, url: str, key: Any) -> str:
    """``alg: none`` (§4.3 item 5 forbids it)."""
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}
    payload = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}

    def seg(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{seg(header)}.{seg(payload)}."


def hmac_proof(method: str, url: str) -> str:
    """HS256 with the symmetric key in the header (§4.2: asymmetric only)."""
    key = OctKey.generate_key(256)
    return proof(key, method, url, alg="HS256", jwk=key.as_dict(private=True))


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048)


def cc_token(
    base: str, client: Any, audience: str, dpop: str | None, **headers: str
) -> requests.Response:
    """A client-credentials token request, with ``dpop`` as its DPoP header when given."""
    if dpop is not None:
        headers["DPoP"] = dpop
    return requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        headers=headers,
    )
