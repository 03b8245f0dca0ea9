"""Client metadata of dynamic registration (RFC 7591 §2, OpenID Connect Dynamic Client
Registration 1.0 §2), validated once for a registration (§3.1) and for its replacement
(RFC 7592 §2.2).

:data:`FIELDS` is the seam: one row per metadata name, saying how it is validated and where
it is stored. A row with ``api`` is a client column, validated by the clients API's own
pydantic model (``idp.management.clients.ClientCreate``, under that field's name) and by the
services behind it (``idp.oauth.service``, ``client_auth``, ``pairwise``), so a registered
client obeys exactly the rules of one made by the operator; with ``column`` too it is simply
assigned (a new flag or value: one row), without, a step of idp.oauth.registration stores it.
A row with ``check`` is kept in the client's registration record (no column; returned on
reads, not used otherwise). Names absent from the table
are ignored, never stored (§2: "the authorization server MUST ignore any client metadata it
does not understand"). Handled beside the table: ``application_type`` (chooses idp's app type
with ``token_endpoint_auth_method``), ``response_types`` (``code`` only) and ``scope``
(syntax-checked, not registered: idp has no per-client scope list).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pydantic

from idp.core.errors import ValidationError
from idp.management.clients import TO_AUTH0, ClientCreate
from idp.oauth import service as oauth
from idp.oauth.clients import PUBLIC_TYPES
from idp.oauth.models import Client

INVALID_METADATA = "invalid_client_metadata"  # RFC 7591 §3.2.2
INVALID_REDIRECT_URI = "invalid_redirect_uri"  # RFC 7591 §3.2.2
CODE_GRANTS = ("authorization_code", "refresh_token")
# the methods that use client_secret (a private_key_jwt client gets none: its key is enough)
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")
_TEXT = 255
_MAX_CONTACTS = 10


class MetadataError(Exception):
    """A refusal (RFC 7591 §3.2.2): the error code and a description naming the field."""

    def __init__(self, field: str, message: str, error: str = INVALID_METADATA) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.error = field, error


def _https_uri(value: Any) -> str:
    """OIDC Registration §2: client_uri, logo_uri, policy_uri, tos_uri are URLs; idp takes
    https only (a page a user may be shown must not be fetched in the clear)."""
    if not isinstance(value, str) or len(value) > 2048:
        raise ValueError("must be an https URL (at most 2048 characters)")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or parts.fragment:
        raise ValueError("must be an https URL without credentials or a fragment")
    return value


def _contacts(value: Any) -> list[str]:
    """RFC 7591 §2: an array of strings, typically e-mail addresses."""
    if not isinstance(value, list) or len(value) > _MAX_CONTACTS:
        raise ValueError(f"must be an array of at most {_MAX_CONTACTS} strings")
    if not all(isinstance(c, str) and 0 < len(c) <= _TEXT and c.isprintable() for c in value):
        raise ValueError(f"each contact is a printable string of at most {_TEXT} characters")
    return list(value)


def _text(value: Any) -> str:
    """RFC 7591 §2: software_id, software_version are strings (an identifier, a version)."""
    if not isinstance(value, str) or not 0 < len(value) <= _TEXT or not value.isprintable():
        raise ValueError(f"must be a printable string of at most {_TEXT} characters")
    return value


@dataclass(frozen=True)
class Field:
    api: str | None = None  # the clients API field (ClientCreate) it is validated as
    # the client column it is assigned to as validated; None with ``api``: stored by a step of
    # idp.oauth.registration (a service: URIs, keys, sectors need checks across fields)
    column: str | None = None
    check: Callable[[Any], Any] | None = None  # no ``api``: kept in the registration record


FIELDS: dict[str, Field] = {
    # name -> how it is validated and stored (a column added later: one row)
    "client_name": Field(api="name"),
    "redirect_uris": Field(api="callbacks"),  # each also by oauth.validate_redirect_uri
    "post_logout_redirect_uris": Field(api="allowed_logout_urls"),  # RP-Initiated Logout §3.1
    "initiate_login_uri": Field(api="initiate_login_uri"),
    "grant_types": Field(api="grant_types"),
    "token_endpoint_auth_method": Field(api="token_endpoint_auth_method"),
    "token_endpoint_auth_signing_alg": Field(api="token_endpoint_auth_signing_alg"),
    "jwks": Field(api="jwks"),  # public keys only (idp.oauth.client_keys)
    "jwks_uri": Field(api="jwks_uri"),  # not fetched now: fetched when a JWT needs it
    "subject_type": Field(api="subject_type"),  # OIDC Core §8
    "sector_identifier_uri": Field(api="sector_identifier_uri"),  # fetched and checked, §8.1
    "backchannel_logout_uri": Field(api="backchannel_logout_uri"),  # Back-Channel Logout §2.2
    "backchannel_logout_session_required": Field(
        api="backchannel_logout_session_required", column="backchannel_logout_session_required"
    ),
    "require_pushed_authorization_requests": Field(api="require_pushed_authorization_requests"),
    "dpop_bound_access_tokens": Field(
        api="dpop_bound_access_tokens",  # RFC 9449 §5.2
        column="dpop_bound_access_tokens",
    ),
    "id_token_signed_response_alg": Field(  # OIDC Registration §2; one the tenant signs with
        api="id_token_signed_response_alg", column="id_token_signed_response_alg"
    ),
    "client_uri": Field(check=_https_uri),
    "logo_uri": Field(check=_https_uri),
    "policy_uri": Field(check=_https_uri),
    "tos_uri": Field(check=_https_uri),
    "contacts": Field(check=_contacts),
    "software_id": Field(check=_text),
    "software_version": Field(check=_text),
}
_BY_API = {f.api: name for name, f in FIELDS.items() if f.api}
COLUMNS = {f.api: f.column for f in FIELDS.values() if f.api and f.column}
_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$")  # RFC 6749 §3.3
# what only the server sets (RFC 7591 §3.2.1, RFC 7592 §2.2): never taken from a request
SERVER_FIELDS = ("client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
                 "registration_access_token", "registration_client_uri")  # fmt: skip


@dataclass(frozen=True)
class Metadata:
    """Validated metadata: idp's app type, the clients API body and what is kept aside."""

    app_type: str
    body: ClientCreate
    kept: dict[str, Any]


def parse(raw: Any) -> Metadata:
    """Validate a registration request's metadata (RFC 7591 §2, §3.1); raise
    :class:`MetadataError`. Only what the table names is read."""
    if not isinstance(raw, dict):
        raise MetadataError("body", "a JSON object of client metadata is expected")
    if "software_statement" in raw:  # RFC 7591 §2.3: idp trusts no statement issuer
        raise MetadataError("software_statement", "software statements are not accepted",
                            "unapproved_software_statement")  # fmt: skip
    app_type, method = _app_type(raw)
    _response_types(raw.get("response_types", ["code"]))
    grants = _grant_types(raw.get("grant_types", ["authorization_code"]))
    if "scope" in raw and not (isinstance(raw["scope"], str) and _SCOPE.match(raw["scope"])):
        raise MetadataError("scope", "a space-separated list of scope tokens (RFC 6749 §3.3)")
    uris = raw.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise MetadataError("redirect_uris", "a non-empty array of URIs is required for the "
                            "authorization code grant", INVALID_REDIRECT_URI)  # fmt: skip
    for uri in uris:
        _redirect_uri(uri, app_type)
    fields = {f.api: raw[name] for name, f in FIELDS.items() if f.api and name in raw}
    fields |= {"grant_types": grants, "token_endpoint_auth_method": method,
               "name": raw.get("client_name") or "Dynamically registered client",
               "app_type": TO_AUTH0[app_type], "is_first_party": False}  # fmt: skip
    try:
        body = ClientCreate.model_validate(fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        api = str(first["loc"][0]) if first["loc"] else ""
        raise MetadataError(_BY_API.get(api, api or "body"), first["msg"]) from None
    kept = {}
    for name, f in FIELDS.items():
        if f.check is not None and name in raw:
            try:
                kept[name] = f.check(raw[name])
            except ValueError as exc:
                raise MetadataError(name, str(exc)) from None
    return Metadata(app_type, body, kept)


def _app_type(raw: dict[str, Any]) -> tuple[str, str]:
    """OIDC Registration §2 ``application_type`` (web, the default, or native) and the
    authentication method (RFC 7591 §2; default client_secret_basic, ``none`` for native)
    choose idp's type: native (public), spa (a web client with ``none``) or regular_web."""
    kind = raw.get("application_type", "web")
    if kind not in ("web", "native"):
        raise MetadataError("application_type", "must be 'web' or 'native'")
    method = raw.get("token_endpoint_auth_method", "none" if kind == "native" else None)
    if kind == "native":
        if method != "none":
            raise MetadataError(
                "token_endpoint_auth_method", "a native app is a public client: 'none' (PKCE)"
            )
        return "native", "none"
    if method == "none":
        return "spa", "none"
    return "regular_web", method if method is not None else "client_secret_basic"


def _response_types(value: Any) -> None:
    if value != ["code"]:
        raise MetadataError("response_types", "only ['code'] (the implicit and hybrid flows "
                            "are not supported, OAuth 2.1 §4)")  # fmt: skip


def _grant_types(value: Any) -> list[str]:
    """RFC 7591 §2.1: response_types ``code`` goes with the ``authorization_code`` grant;
    ``refresh_token`` may be added. Implicit is refused (OAuth 2.1 removed it); machine
    clients (client_credentials) are made by the operator, who also grants them APIs."""
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise MetadataError("grant_types", "must be an array of strings")
    if "implicit" in value:
        raise MetadataError("grant_types", "the implicit grant is not supported (OAuth 2.1)")
    if "authorization_code" not in value or any(g not in CODE_GRANTS for g in value):
        raise MetadataError("grant_types", "authorization_code, optionally with refresh_token "
                            "(response_types is ['code'], RFC 7591 §2.1)")  # fmt: skip
    return list(dict.fromkeys(value))


def _redirect_uri(uri: str, app_type: str) -> None:
    """RFC 7591 §2, OIDC Registration §2: exact URIs, no fragment; a web client's are https
    (even on loopback: OIDC Registration §2 leaves http://localhost to native clients), a
    native client's http only on loopback (RFC 8252 §7.3) or a private-use scheme (§7.1)."""
    try:
        oauth.validate_redirect_uri(uri, app_type)
    except ValidationError as exc:
        raise MetadataError("redirect_uris", str(exc), INVALID_REDIRECT_URI) from None
    if app_type != "native" and urlsplit(uri).scheme.lower() != "https":
        raise MetadataError("redirect_uris", f"a web client's redirect URIs are https: {uri!r}",
                            INVALID_REDIRECT_URI)  # fmt: skip


def field_of(message: str, candidates: tuple[str, ...]) -> str:
    """The metadata name a service's refusal is about (the first named in it), else the first
    candidate: the services word their messages with these same names."""
    signing = "signs with" in message or "signing_alg" in message  # client_auth's wording
    if signing and "token_endpoint_auth_signing_alg" in candidates:
        return "token_endpoint_auth_signing_alg"
    return next((c for c in candidates if c in message), candidates[0])


def describe(client: Client, api_json: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """The metadata as registered (RFC 7591 §3.2.1): every table row with a value, read back
    from what is stored (``api_json``: the clients API's view of the client)."""
    out: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "application_type": "native" if client.app_type == "native" else "web",
        "response_types": ["code"],
    }
    for name, f in FIELDS.items():
        value = api_json.get(f.api) if f.api else kept.get(name)
        if value not in (None, [], False):
            out[name] = value
    if client.app_type not in PUBLIC_TYPES and client.token_endpoint_auth_method in SECRET_METHODS:
        out["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: 0, the secret does not expire
    return out
