"""Operator-side management of applications, APIs and client grants (used by CLI and API)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.connections import service as connections
from idp.core import clock
from idp.core.crypto import SecretBox, random_identifier, random_token
from idp.core.errors import ConflictError, NotFoundError, ValidationError
from idp.oauth import client_auth
from idp.oauth.clients import APP_TYPES, GRANT_TYPES_BY_APP, OPT_IN_GRANT_TYPES, PUBLIC_TYPES
from idp.oauth.models import Client, ClientGrant, ResourceServer

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3 scope-token
_CUSTOM_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$")  # RFC 8252 §7.1 reverse domain


def validate_redirect_uri(uri: str, app_type: str) -> str:
    """BCP §2.6 / OAuth 2.1 §2.3.1: absolute, no fragment, https (http only on loopback),
    custom reverse-domain schemes only for native apps; never javascript:/data: (any case)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or parts.fragment or "#" in uri:
        raise ValidationError(f"redirect URI must be absolute and without a fragment: {uri!r}")
    if any(ch.isspace() for ch in uri) or "\\" in uri:
        raise ValidationError(f"redirect URI contains whitespace or a backslash: {uri!r}")
    if scheme in {"http", "https"}:
        if not parts.hostname or "@" in parts.netloc:
            raise ValidationError(f"redirect URI needs a host and no user info: {uri!r}")
        if scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ValidationError(f"http redirect URIs are allowed on loopback only: {uri!r}")
        return uri
    if app_type == "native" and _CUSTOM_SCHEME.match(scheme):
        return uri
    raise ValidationError(f"redirect URI scheme not allowed: {uri!r}")


def validate_scopes(scopes: list[str]) -> list[str]:
    for scope in scopes:
        if not _SCOPE_TOKEN.match(scope):
            raise ValidationError(f"invalid scope {scope!r}")
    return list(dict.fromkeys(scopes))


@dataclass(frozen=True)
class CreatedClient:
    client: Client
    client_secret: str | None


def create_client(
    session: Session,
    box: SecretBox,
    *,
    name: str,
    app_type: str,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    first_party: bool = True,
    initiate_login_uri: str | None = None,
) -> CreatedClient:
    """Register an application. The secret is returned once and stored only as a digest."""
    if app_type not in APP_TYPES:
        raise ValidationError(f"type must be one of {', '.join(APP_TYPES)}")
    if not name.strip():
        raise ValidationError("name must not be empty")
    redirect_uris = [validate_redirect_uri(u, app_type) for u in redirect_uris or []]
    logout_uris = [validate_redirect_uri(u, app_type) for u in post_logout_redirect_uris or []]
    if app_type == "m2m" and (redirect_uris or logout_uris):
        raise ValidationError("m2m applications have no redirect URIs")
    public = app_type in PUBLIC_TYPES
    secret = None if public else random_token(32)
    client = Client(
        client_id=random_identifier(32),
        name=name.strip(),
        app_type=app_type,
        secret_digest=None if secret is None else box.digest(secret),
        token_endpoint_auth_method="none" if public else "client_secret_basic",
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        grant_types=[g for g in GRANT_TYPES_BY_APP[app_type] if g not in OPT_IN_GRANT_TYPES],
        first_party=first_party,
        initiate_login_uri=validate_initiate_login_uri(initiate_login_uri),
        created_at=clock.now(),
    )
    session.add(client)
    connections.enable_defaults(session, client.client_id)
    return CreatedClient(client, secret)


def validate_initiate_login_uri(uri: str | None) -> str | None:
    """OIDC Core §4: an https URI (http on loopback), which idp sends browsers to."""
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or parts.fragment or "#" in uri:
        raise ValidationError(
            f"initiate_login_uri must be an https URI without a fragment: {uri!r}"
        )
    validate_redirect_uri(uri, "regular_web")  # the same host, scheme and character rules
    return uri


def set_initiate_login_uri(session: Session, client_id: str, uri: str | None) -> Client:
    client = get_client(session, client_id)
    if client.app_type == "m2m" and uri:
        raise ValidationError("m2m applications have no browser login")
    client.initiate_login_uri = validate_initiate_login_uri(uri)
    return client


def set_auth_method(session: Session, client_id: str, method: str) -> Client:
    client = get_client(session, client_id)
    if client.app_type in PUBLIC_TYPES or method not in {
        "client_secret_basic",
        "client_secret_post",
    }:
        raise ValidationError("confidential clients use client_secret_basic or client_secret_post")
    client.token_endpoint_auth_method = method
    return client


def update_client(
    session: Session,
    client_id: str,
    *,
    name: str | None = None,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    grant_types: list[str] | None = None,
    first_party: bool | None = None,
) -> Client:
    """Change what is given (``None``: unchanged), with the rules of :func:`create_client`;
    ``grant_types`` is a non-empty subset of what the app's type allows."""
    client = get_client(session, client_id)
    if name is not None:
        if not name.strip():
            raise ValidationError("name must not be empty")
        client.name = name.strip()
    for attr, uris in (("redirect_uris", redirect_uris),
                       ("post_logout_redirect_uris", post_logout_redirect_uris)):  # fmt: skip
        if uris is not None:
            if client.app_type == "m2m" and uris:
                raise ValidationError("m2m applications have no redirect URIs")
            setattr(client, attr, [validate_redirect_uri(u, client.app_type) for u in uris])
    if grant_types is not None:
        allowed = GRANT_TYPES_BY_APP[client.app_type]
        if not grant_types or any(g not in allowed for g in grant_types):
            raise ValidationError(
                f"grant_types of a {client.app_type} app: one or more of {', '.join(allowed)}"
            )
        client.grant_types = list(dict.fromkeys(grant_types))
    if first_party is not None:
        client.first_party = first_party
    return client


def rotate_secret(session: Session, box: SecretBox, client_id: str) -> str:
    """A new secret for a confidential client (the old one stops working); returned once."""
    client = get_client(session, client_id)
    if client.app_type in PUBLIC_TYPES:
        raise ValidationError("public applications (spa, native) have no secret")
    secret = random_token(32)
    client.secret_digest = box.digest(secret)
    client_auth.rotated_secret(client, box, secret)
    return secret


def get_client(session: Session, client_id: str) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    return client


def list_clients(session: Session) -> list[Client]:
    return list(session.scalars(select(Client).order_by(Client.created_at)))


def delete_client(session: Session, client_id: str) -> None:
    session.delete(get_client(session, client_id))


def create_api(
    session: Session,
    *,
    identifier: str,
    name: str,
    scopes: list[str],
    descriptions: dict[str, str] | None = None,
) -> ResourceServer:
    """An API (resource server) named by its audience URI; ``descriptions`` maps some of
    ``scopes`` to the text shown for them (Auth0's ``scopes[].description``)."""
    parts = urlsplit(identifier)
    if not parts.scheme or not (parts.netloc or parts.path) or parts.fragment:
        raise ValidationError("an API identifier is an absolute URI, e.g. https://api.example.com")
    if session.scalar(select(ResourceServer).where(ResourceServer.identifier == identifier)):
        raise ConflictError(f"an API with identifier {identifier!r} exists")
    api = ResourceServer(
        id="api_" + random_token(12),
        identifier=identifier,
        name=name.strip() or identifier,
        scopes=validate_scopes(scopes),
        scope_descriptions=_descriptions(scopes, descriptions),
        created_at=clock.now(),
    )
    session.add(api)
    return api


def _descriptions(scopes: list[str], descriptions: dict[str, str] | None) -> dict[str, str]:
    return {s: d for s, d in (descriptions or {}).items() if s in scopes and d}


def update_api(
    session: Session,
    api: ResourceServer,
    *,
    name: str | None = None,
    scopes: list[str] | None = None,
    descriptions: dict[str, str] | None = None,
) -> ResourceServer:
    """Change what is given (``None``: unchanged); ``scopes`` is the whole list. A scope the
    API no longer defines is also taken out of its client grants: a grant must not go on
    minting a scope its API dropped (RFC 6749 §3.3: the server decides what is granted)."""
    if name is not None:
        if not name.strip():
            raise ValidationError("name must not be empty")
        api.name = name.strip()
    if scopes is not None:
        api.scopes = validate_scopes(scopes)
        api.scope_descriptions = _descriptions(api.scopes, descriptions)
        kept = set(api.scopes)
        for grant in session.scalars(
            select(ClientGrant).where(ClientGrant.audience == api.identifier)
        ):
            if not set(grant.scopes) <= kept:
                grant.scopes = [s for s in grant.scopes if s in kept]
    return api


def get_api(session: Session, identifier: str) -> ResourceServer:
    api = session.scalar(select(ResourceServer).where(ResourceServer.identifier == identifier))
    if api is None:
        raise NotFoundError(f"no API with identifier {identifier!r}")
    return api


def list_apis(session: Session) -> list[ResourceServer]:
    return list(session.scalars(select(ResourceServer).order_by(ResourceServer.created_at)))


def delete_api(session: Session, identifier: str) -> None:
    session.delete(get_api(session, identifier))


def create_client_grant(
    session: Session, *, client_id: str, audience: str, scopes: list[str]
) -> ClientGrant:
    client = get_client(session, client_id)
    if client.app_type != "m2m":
        raise ValidationError("client grants are for m2m applications")
    api = get_api(session, audience)
    unknown = set(scopes) - set(api.scopes)
    if unknown:
        raise ValidationError(f"scopes not defined on {audience}: {', '.join(sorted(unknown))}")
    exists = session.scalar(
        select(ClientGrant).where(
            ClientGrant.client_id == client_id, ClientGrant.audience == audience
        )
    )
    if exists:
        raise ConflictError("this client already has a grant for this API")
    grant = ClientGrant(
        id="cgr_" + random_token(12),
        client_id=client_id,
        audience=audience,
        scopes=validate_scopes(scopes),
        created_at=clock.now(),
    )
    session.add(grant)
    return grant


def list_client_grants(session: Session) -> list[ClientGrant]:
    return list(session.scalars(select(ClientGrant).order_by(ClientGrant.created_at)))


def get_client_grant(session: Session, grant_id: str, lock: bool = False) -> ClientGrant:
    grant = session.get(ClientGrant, grant_id, with_for_update=True if lock else None)
    if grant is None:
        raise NotFoundError(f"no client grant {grant_id!r}")
    return grant


def update_client_grant(session: Session, grant_id: str, scopes: list[str]) -> ClientGrant:
    """The grant's whole scope list, each defined on its API."""
    grant = get_client_grant(session, grant_id)
    unknown = set(scopes) - set(get_api(session, grant.audience).scopes)
    if unknown:
        raise ValidationError(
            f"scopes not defined on {grant.audience}: {', '.join(sorted(unknown))}"
        )
    grant.scopes = validate_scopes(scopes)
    return grant


def delete_client_grant(session: Session, grant_id: str) -> None:
    session.delete(get_client_grant(session, grant_id))
