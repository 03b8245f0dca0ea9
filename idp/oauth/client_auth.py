"""How a client authenticates and signs its requests (OIDC Registration §2, RFC 7591 §2,
RFC 9126 §6): ``token_endpoint_auth_method``, ``jwks`` / ``jwks_uri``,
``token_endpoint_auth_signing_alg`` and ``require_pushed_authorization_requests``; set by
the clients API and ``idp clients``, checked together so that no client is left with a
method it cannot use (private_key_jwt without keys, an HMAC algorithm for a key pair).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from idp.core.crypto import SecretBox, random_token
from idp.core.errors import NotFoundError, ValidationError
from idp.oauth.client_keys import ASYMMETRIC_ALGS, HMAC_ALGS, validate_jwks, validate_jwks_uri
from idp.oauth.clients import PUBLIC_TYPES
from idp.oauth.models import Client

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt",
                "client_secret_jwt")  # fmt: skip
UNSET: Any = object()


def configure(
    client: Client,
    box: SecretBox,
    *,
    method: str | None = UNSET,
    jwks: Any = UNSET,
    jwks_uri: str | None = UNSET,
    signing_alg: str | None = UNSET,
    require_par: bool | None = UNSET,
    secret: str | None = None,
) -> str | None:
    """Change what is given (``UNSET``: unchanged; ``None`` clears ``jwks``, ``jwks_uri`` and
    ``signing_alg``). Returns a new client secret when the client moves to
    client_secret_jwt (its HMAC key must be stored encrypted, and the old secret is known only
    as a digest), unless ``secret`` (the one just created) is given to be kept."""
    if jwks is not UNSET:
        client.jwks = None if jwks is None else validate_jwks(jwks)
    if jwks_uri is not UNSET:
        client.jwks_uri = validate_jwks_uri(jwks_uri)
    if client.jwks and client.jwks_uri:
        raise ValidationError("send jwks or jwks_uri, not both (OIDC Registration §2)")
    if require_par is not UNSET and require_par is not None:
        client.require_pushed_authorization_requests = bool(require_par)
    new_secret = None
    if method is not UNSET and method is not None:
        new_secret = _method(client, box, method, secret)
    if signing_alg is not UNSET:
        client.token_endpoint_auth_signing_alg = signing_alg or None
    _check(client)
    return new_secret


def _method(client: Client, box: SecretBox, method: str, secret: str | None) -> str | None:
    if client.app_type in PUBLIC_TYPES:
        if method != "none":
            raise ValidationError("public applications (spa, native) authenticate with 'none'")
        return None
    if method not in AUTH_METHODS:
        raise ValidationError(f"token_endpoint_auth_method is one of {', '.join(AUTH_METHODS)}")
    before = client.token_endpoint_auth_method
    client.token_endpoint_auth_method = method
    if method != "client_secret_jwt":
        client.secret_encrypted = None  # only that method needs the secret itself
        return None
    if before == "client_secret_jwt" and client.secret_encrypted is not None:
        return None
    fresh = secret is None
    secret = secret or random_token(32)
    client.secret_digest = box.digest(secret)
    client.secret_encrypted = box.encrypt(secret.encode())
    return secret if fresh else None


def _check(client: Client) -> None:
    method = client.token_endpoint_auth_method
    alg = client.token_endpoint_auth_signing_alg
    if method == "private_key_jwt" and not (client.jwks or client.jwks_uri):
        raise ValidationError("private_key_jwt needs the client's jwks or jwks_uri")
    if alg is None:
        return
    if method == "private_key_jwt" and alg not in ASYMMETRIC_ALGS:
        raise ValidationError(f"private_key_jwt signs with one of {', '.join(ASYMMETRIC_ALGS)}")
    if method == "client_secret_jwt" and alg not in HMAC_ALGS:
        raise ValidationError(f"client_secret_jwt signs with one of {', '.join(HMAC_ALGS)}")
    if method not in ("private_key_jwt", "client_secret_jwt"):
        raise ValidationError(
            "token_endpoint_auth_signing_alg is for private_key_jwt and client_secret_jwt"
        )


def rotated_secret(client: Client, box: SecretBox, secret: str) -> None:
    """After a secret rotation: a client_secret_jwt client's HMAC key follows it."""
    if client.token_endpoint_auth_method == "client_secret_jwt":  # noqa: S105 - a method name
        client.secret_encrypted = box.encrypt(secret.encode())


def settings_json(client: Client) -> dict[str, Any]:
    return {
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "token_endpoint_auth_signing_alg": client.token_endpoint_auth_signing_alg,
        "require_pushed_authorization_requests": bool(client.require_pushed_authorization_requests),
    }


def configure_by_id(session: Session, box: SecretBox, client_id: str, **changes: Any) -> str | None:
    client = session.get(Client, client_id)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    return configure(client, box, **changes)
