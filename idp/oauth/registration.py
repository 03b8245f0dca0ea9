"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): the
initial access tokens an operator hands out, registering a client, reading, replacing and
deleting it with its registration access token. Metadata rules: idp.oauth.registration_metadata.

Single use under concurrency by the database: an initial access token's use is one
conditional UPDATE (not expired, not revoked, under ``max_uses``); a registration access
token's rotation (RFC 7592 §2.2, on each update) is one conditional UPDATE on the old digest,
so of two updates with the same token one wins and the other gets ``invalid_token``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from idp.backchannel import service as backchannel
from idp.core import clock
from idp.core.crypto import SecretBox, random_token
from idp.core.errors import ValidationError
from idp.extensions import services
from idp.management.clients import client_json
from idp.oauth import client_auth, pairwise
from idp.oauth import registration_metadata as meta
from idp.oauth import service as oauth
from idp.oauth.client_features import added_switched_off, check_id_token_alg
from idp.oauth.client_keys import validate_jwks, validate_jwks_uri
from idp.oauth.models import AccessTokenRecord, Client, RefreshToken
from idp.oauth.registration_models import ClientRegistration, InitialAccessToken

PRIVATE_KEY_JWT = "private_key_jwt"


class InvalidToken(Exception):
    """RFC 7591 §3 / RFC 7592 §2: a missing, wrong, expired or used-up bearer token."""


# ------------------------------------------------------------------ initial access tokens
def create_initial_token(
    session: Session, box: SecretBox, expires_in: int | None, max_uses: int | None
) -> tuple[InitialAccessToken, str]:
    """A new initial access token (RFC 7591 §3), returned once; stored as a digest."""
    if expires_in is not None and expires_in <= 0:
        raise ValidationError("expires-in must be a positive number of seconds")
    if max_uses is not None and max_uses <= 0:
        raise ValidationError("max-uses must be positive")
    token, now = random_token(32), clock.now()
    row = InitialAccessToken(
        id="iat_" + random_token(9), token_digest=box.digest(token), created_at=now,
        expires_at=None if expires_in is None else now + expires_in, max_uses=max_uses, uses=0,
    )  # fmt: skip
    session.add(row)
    return row, token


def list_initial_tokens(session: Session) -> list[InitialAccessToken]:
    return list(session.scalars(select(InitialAccessToken).order_by(InitialAccessToken.created_at)))


def revoke_initial_token(session: Session, token_id: str) -> bool:
    done = session.execute(
        update(InitialAccessToken)
        .where(InitialAccessToken.id == token_id, InitialAccessToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return bool(getattr(done, "rowcount", 0))


def _usable(box: SecretBox, token: str) -> Any:
    row, now = InitialAccessToken, clock.now()
    return (
        row.token_digest == box.digest(token),
        row.revoked_at.is_(None),
        or_(row.expires_at.is_(None), row.expires_at > now),
        or_(row.max_uses.is_(None), row.uses < row.max_uses),
    )


def check_initial_token(session: Session, box: SecretBox, token: str | None) -> None:
    """A look, before any work: :class:`InvalidToken` unless the token could be used now."""
    if (
        not token
        or session.scalar(select(InitialAccessToken.id).where(*_usable(box, token))) is None
    ):
        raise InvalidToken("the initial access token is missing, invalid, expired, revoked or "
                           "used up")  # fmt: skip


def use_initial_token(session: Session, box: SecretBox, token: str | None) -> str:
    """Count one use of the bearer token (RFC 7591 §3); its id, or :class:`InvalidToken`.
    The checks and the count are one UPDATE, so ``max_uses`` holds under concurrency."""
    if not token:
        raise InvalidToken("an initial access token is required")
    row = InitialAccessToken
    done = session.execute(
        update(row).where(*_usable(box, token)).values(uses=row.uses + 1).returning(row.id)
    )
    token_id = done.scalar()
    if token_id is None:
        raise InvalidToken("the initial access token is invalid, expired, revoked or used up")
    return str(token_id)


# ------------------------------------------------------------------ registrations
@dataclass(frozen=True)
class Registered:
    """A registration's answer (RFC 7591 §3.2.1); the secrets appear here only."""

    client: Client
    record: ClientRegistration
    metadata: dict[str, Any]
    client_secret: str | None
    registration_access_token: str | None


def register(
    session: Session,
    box: SecretBox,
    config: dict[str, Any],
    raw: Any,
    initial_token_id: str | None = None,
) -> Registered:
    """RFC 7591 §3.1: validate, create the client (third-party: users are asked for consent)
    and its registration record; raise :class:`meta.MetadataError`."""
    parsed = meta.parse(raw)
    body = parsed.body
    _other_uris(parsed)
    _features_on(parsed, config)
    created = _service(lambda: oauth.create_client(
        session, box, name=body.name, app_type=parsed.app_type, redirect_uris=body.callbacks,
        post_logout_redirect_uris=body.allowed_logout_urls, first_party=False,
        initiate_login_uri=body.initiate_login_uri,
    ), ("initiate_login_uri", "post_logout_redirect_uris", "redirect_uris"))  # fmt: skip
    client = created.client
    session.flush()
    client.grant_types = list(body.grant_types or ["authorization_code"])
    _settings(client, box, config, parsed, [], created.client_secret)
    token, now = random_token(32), clock.now()
    record = ClientRegistration(
        client_id=client.client_id, access_token_digest=box.digest(token),
        initial_token_id=initial_token_id, kept=parsed.kept, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(record)
    # a private_key_jwt client authenticates with its key only: its secret is never shown
    secret = None if client.token_endpoint_auth_method == PRIVATE_KEY_JWT else created.client_secret
    return Registered(client, record, read(client, record), secret, token)


def _other_uris(parsed: meta.Metadata) -> None:
    """Post-logout redirect URIs by the redirect URI rules, initiate_login_uri by its own
    (OIDC Core §4), each refusal naming its field."""
    app_type, body = parsed.app_type, parsed.body
    _service(lambda: [oauth.validate_redirect_uri(u, app_type) for u in body.allowed_logout_urls],
             ("post_logout_redirect_uris",))  # fmt: skip
    _service(lambda: oauth.validate_initiate_login_uri(body.initiate_login_uri),
             ("initiate_login_uri",))  # fmt: skip


def _features_on(parsed: meta.Metadata, config: dict[str, Any], had: Client | None = None) -> None:
    """RFC 7591 §2 lets the server refuse metadata: a feature switched off here, and so absent
    from the discovery document, is not registered for. A client that asked for DPoP-bound
    tokens while DPoP is off could get no token at all (RFC 9449 §5.2), and a back-channel
    logout URI would never be called (OIDC Back-Channel Logout §2.2). A replacement (RFC 7592
    §2.2, ``had``: the client before it) may keep what the client already has, as the clients
    API lets an update keep it: only what it adds is refused."""
    body = parsed.body
    off = added_switched_off(
        config, grant_types=body.grant_types, dpop=body.dpop_bound_access_tokens,
        logout_uri=body.backchannel_logout_uri,
        had_grant_types=had.grant_types if had is not None else (),
        had_dpop=bool(had is not None and had.dpop_bound_access_tokens),
        had_logout_uri=had.backchannel_logout_uri if had is not None else None,
    )  # fmt: skip
    if off is not None:  # the clients API's message (idp.oauth.client_features)
        raise meta.MetadataError(*off)
    _service(lambda: check_id_token_alg(body.id_token_signed_response_alg,
                                        services().keys),
             ("id_token_signed_response_alg",))  # fmt: skip


def _settings(
    client: Client, box: SecretBox, config: dict[str, Any], parsed: meta.Metadata,
    old_callbacks: list[str], secret: str | None,
) -> str | None:  # fmt: skip
    """The table's client columns beyond name and URIs, through the clients API's services
    (the whole set: a registration and a replacement both say everything)."""
    body = parsed.body
    jwks = _service(lambda: body.jwks and validate_jwks(body.jwks), ("jwks",))
    jwks_uri = _service(lambda: validate_jwks_uri(body.jwks_uri), ("jwks_uri",))
    if jwks and jwks_uri:
        raise meta.MetadataError("jwks_uri", "send jwks or jwks_uri, not both (OIDC "
                                 "Registration §2)")  # fmt: skip
    alg = body.token_endpoint_auth_signing_alg
    new_secret = _service(lambda: client_auth.configure(
        client, box, method=body.token_endpoint_auth_method, jwks=jwks or None,
        jwks_uri=jwks_uri, signing_alg=alg, secret=secret,
        require_par=body.require_pushed_authorization_requests,
    ), ("token_endpoint_auth_method", "token_endpoint_auth_signing_alg"))  # fmt: skip
    _service(lambda: pairwise.configure(config, client, body.subject_type,
                                        body.sector_identifier_uri, old_callbacks),
             ("sector_identifier_uri", "subject_type"))  # fmt: skip
    _service(lambda: backchannel.configure(client, body.backchannel_logout_uri),
             ("backchannel_logout_uri",))  # fmt: skip
    for api, column in meta.COLUMNS.items():  # the plain rows of the table
        setattr(client, column, getattr(body, api))
    return new_secret


def _service(call: Any, fields: tuple[str, ...]) -> Any:
    """Run a clients service; its refusal becomes invalid_client_metadata naming the field
    (invalid_redirect_uri for redirect_uris, RFC 7591 §3.2.2)."""
    try:
        return call()
    except ValidationError as exc:
        field = meta.field_of(str(exc), fields)
        error = meta.INVALID_REDIRECT_URI if field == "redirect_uris" else meta.INVALID_METADATA
        raise meta.MetadataError(field, str(exc), error) from None


def read(client: Client, record: ClientRegistration) -> dict[str, Any]:
    return meta.describe(client, client_json(client), dict(record.kept or {}))


def authenticate(session: Session, box: SecretBox, client_id: str, token: str | None) -> tuple[
    Client, ClientRegistration
]:  # fmt: skip
    """RFC 7592 §2: the client of ``registration_client_uri`` and its registration access
    token; an unknown client answers like a wrong token (§2.1: no probing for client ids)."""
    record = session.get(ClientRegistration, client_id[:64]) if client_id else None
    client = session.get(Client, client_id[:64]) if record is not None else None
    if record is None or client is None or not token:
        raise InvalidToken("invalid registration access token")
    if not box.verify(token, record.access_token_digest):
        raise InvalidToken("invalid registration access token")
    return client, record


def replace(
    session: Session, box: SecretBox, config: dict[str, Any], client: Client,
    record: ClientRegistration, token: str, raw: Any,
) -> Registered:  # fmt: skip
    """RFC 7592 §2.2: the whole metadata replaced (omitted fields are removed), validated as
    at registration; the client_id must be the client's, a client_secret sent must be the
    current one and is never changed, the type (public or confidential) is fixed. The
    registration access token is rotated: the answer carries the new one."""
    if not isinstance(raw, dict):
        raise meta.MetadataError("body", "a JSON object of client metadata is expected")
    if raw.get("client_id") != client.client_id:
        raise meta.MetadataError("client_id", "must be sent and be this client's id")
    for name in ("registration_access_token", "registration_client_uri",
                 "client_secret_expires_at", "client_id_issued_at"):  # fmt: skip
        if name in raw:
            raise meta.MetadataError(name, "set by the server, not sent (RFC 7592 §2.2)")
    sent_secret = raw.get("client_secret")
    if sent_secret is not None and not (
        isinstance(sent_secret, str) and client.secret_digest
        and box.verify(sent_secret, client.secret_digest)
    ):  # fmt: skip
        raise meta.MetadataError("client_secret", "the client may not change its secret")
    parsed = meta.parse({k: v for k, v in raw.items() if k not in meta.SERVER_FIELDS})
    if parsed.app_type != client.app_type:
        raise meta.MetadataError(
            "application_type", "application_type and public/confidential (the "
            "token_endpoint_auth_method 'none' or not) are fixed at registration")  # fmt: skip
    body, old = parsed.body, list(client.redirect_uris)
    _other_uris(parsed)
    _features_on(parsed, config, had=client)
    _service(lambda: oauth.update_client(
        session, client.client_id, name=body.name, redirect_uris=body.callbacks,
        post_logout_redirect_uris=body.allowed_logout_urls,
    ), ("post_logout_redirect_uris", "redirect_uris"))  # fmt: skip
    _service(lambda: oauth.set_initiate_login_uri(session, client.client_id,
                                                  body.initiate_login_uri),
             ("initiate_login_uri",))  # fmt: skip
    client.grant_types = list(body.grant_types or ["authorization_code"])
    before = (client.token_endpoint_auth_method, client.secret_digest)
    if _settings(client, box, config, parsed, old, None) is not None:
        raise meta.MetadataError(
            "token_endpoint_auth_method",
            "moving to client_secret_jwt would change the client's secret: register anew",
        )
    assert before[1] == client.secret_digest  # the secret never changes here
    new = random_token(32)
    rotated = session.execute(
        update(ClientRegistration)
        .where(ClientRegistration.client_id == client.client_id,
               ClientRegistration.access_token_digest == box.digest(token))
        .values(access_token_digest=box.digest(new), kept=parsed.kept, updated_at=clock.now())
    )  # fmt: skip
    if not getattr(rotated, "rowcount", 0):
        raise InvalidToken("the registration access token was rotated meanwhile")
    session.refresh(record)
    return Registered(client, record, read(client, record), None, new)


def remove(session: Session, client: Client) -> None:
    """RFC 7592 §2.3: the client is gone and so are its grants: every refresh and access
    token issued to it is revoked (tokens are JWTs checked against these rows)."""
    client_id = client.client_id
    session.execute(
        update(RefreshToken).where(RefreshToken.client_id == client_id).values(status="revoked")
    )
    session.execute(
        update(AccessTokenRecord)
        .where(AccessTokenRecord.client_id == client_id)
        .values(revoked=True)
    )
    session.execute(delete(ClientRegistration).where(ClientRegistration.client_id == client_id))
    oauth.delete_client(session, client_id)
