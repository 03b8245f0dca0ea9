"""``/api/v2/clients``: applications, as Auth0 Management API v2's clients (``read:clients``,
``create:clients``, ``update:clients``, ``delete:clients``).

Auth0's field names over idp's columns: ``callbacks`` are the redirect URIs,
``allowed_logout_urls`` the post-logout redirect URIs, ``is_first_party`` the first-party
flag (a third-party app asks for consent). ``app_type`` is Auth0's ``regular_web``, ``spa``,
``native`` or ``non_interactive``, which is idp's ``m2m`` (a machine client: the
client-credentials grant only). ``grant_types`` is a subset of what the type allows;
``urn:ietf:params:oauth:grant-type:token-exchange`` (RFC 8693) is one a confidential app
(``regular_web``, ``non_interactive``) has only when it is asked for, as
``urn:ietf:params:oauth:grant-type:device_code`` (RFC 8628, Auth0's name) a ``regular_web``
or ``native`` app, refused (400, the field and the switch named) while ``DEVICE_FLOW_ENABLED``
is off (``idp.oauth.client_features``).

``mfa_policy`` is an idp extension (Auth0 sets MFA per tenant or in an Action): ``never``,
``always`` or ``adaptive`` (a second factor from users who enrolled one, unless their browser
is remembered) for this application's logins, ``null`` to follow the tenant's ``MFA_POLICY``
(the default; ``idp.mfa.policy``).

``dpop_bound_access_tokens`` (RFC 9449 §5.2's client metadata; Auth0 has no such field): the
client's token requests are refused without a DPoP proof (``invalid_dpop_proof``). Refused
(400) while ``DPOP_ENABLED`` is off: such a client could get no token.

``id_token_signed_response_alg`` (OIDC Registration §2; Auth0 has ``jwt_configuration.alg``):
the algorithm of the app's ID tokens, ``RS256`` or ``ES256``, one the tenant signs with now
(400 otherwise); ``null``, the default, is RS256 whatever the tenant's access tokens use.

``subject_type`` and ``sector_identifier_uri`` (OIDC Registration §2's names; Auth0 has no
pairwise identifiers): ``pairwise`` gives the app a ``sub`` of its own per user (OIDC Core §8),
the same for every app of its sector, the host of ``sector_identifier_uri`` (https, a JSON array
listing every callback, fetched when set and when the callbacks change) or of the callbacks
(then all on one host). A change that would move a pairwise app to another sector is refused.

``backchannel_logout_uri`` and ``backchannel_logout_session_required`` (OIDC Back-Channel
Logout §2.2's names; Auth0 nests the URI in ``oidc_logout.backchannel_logout_urls``): where
idp POSTs a Logout Token when a session in which the app got an ID token ends (``sid`` is
always in it, so ``..._session_required`` is recorded and always met). A URI is refused
(400) while ``BACKCHANNEL_LOGOUT_ENABLED`` is off: it would never be called (a client keeps
the one it had).

``client_secret`` appears twice in a client's life: in the answer to its creation and to
``POST /clients/{id}/rotate-secret``; idp keeps only a digest. Public apps (``spa``,
``native``) have none and authenticate with ``none`` (PKCE).

Differences from Auth0, deliberate: ``app_type`` is fixed at creation (changing a machine
client into a browser app changes how it authenticates: make a new one); two clients cannot
share a ``name`` (409), so that automation can find one by name; fields idp has no use for
(``logo_uri``, ``jwt_configuration``, ...) are refused rather than silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator
from sqlalchemy import select

from idp.backchannel import service as backchannel
from idp.core.errors import ConflictError, NotFoundError, ValidationError
from idp.extensions import db, services
from idp.management.registry import Item, Paged, paginate, route
from idp.management.validation import Body, FieldsQuery, Out, PageQuery, Url
from idp.oauth import client_auth, pairwise
from idp.oauth import service as oauth
from idp.oauth.client_features import check_id_token_alg, refuse_switched_off
from idp.oauth.models import Client

TAG = "clients"
AppType = Literal["regular_web", "spa", "native", "non_interactive"]
AuthMethod = Literal[
    "none", "client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"
]
IdTokenAlg = Literal["RS256", "ES256"]
IDT_ALG_DOC = ("OIDC Registration §2: the algorithm of this app's ID tokens, one the tenant "
                "signs with now (discovery's id_token_signing_alg_values_supported); null: "
                "RS256.")  # fmt: skip
SigningAlg = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                     "ES512", "EdDSA", "HS256", "HS384", "HS512"]  # fmt: skip
JWKS = ("OIDC Registration §2: the client's public keys (a JWK Set), for private_key_jwt "
        "(RFC 7523) and signed request objects (RFC 9101); or jwks_uri, not both.")  # fmt: skip
JWKS_URI = "Where the client publishes its JWK Set (https), fetched and cached by idp."
SIGNING_ALG = ("The one algorithm the client's assertions may use (asymmetric for "
               "private_key_jwt, HS* for client_secret_jwt); null: any of them.")  # fmt: skip
REQUIRE_PAR = "RFC 9126 §6: authorization requests only through /oauth/par."
GrantType = Literal[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    # RFC 8693, for confidential apps (regular_web, non_interactive); off unless asked for
    "urn:ietf:params:oauth:grant-type:token-exchange",
    # RFC 8628, for regular_web and native apps; off unless asked for
    "urn:ietf:params:oauth:grant-type:device_code",
]
MfaPolicy = Literal["never", "always", "adaptive"]
SubjectType = Literal["public", "pairwise"]
SUBJECT_TYPE = "OIDC Core §8: the sub this app sees, the user id or one of its sector's own."
SECTOR_URI = ("OIDC Core §8.1: https URL of a JSON array listing every callback; its host is "
              "the pairwise sector (else the callbacks' one host).")  # fmt: skip
BCL_URI = "OIDC Back-Channel Logout §2.2: where a Logout Token is POSTed when a session ends."
BCL_SID = "OIDC Back-Channel Logout §2.2: sid required in the Logout Token (idp always sends it)."
MFA_POLICY = ("idp extension: never, always or adaptive (a second factor from users who enrolled "
              "one, unless their browser is remembered) for this application's logins; null "
              "follows the tenant's MFA_POLICY.")  # fmt: skip
DPOP = (
    "RFC 9449 §5.2: every token request of this client must carry a DPoP proof, so its "
    "access tokens are always DPoP-bound (token_type DPoP, cnf.jkt)."
)
TO_IDP = {"regular_web": "regular_web", "spa": "spa", "native": "native",
          "non_interactive": "m2m"}  # fmt: skip
TO_AUTH0 = {v: k for k, v in TO_IDP.items()}
ClientName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^<>]+$")]
"""Any text but '<' and '>', as at Auth0."""


# ---------------------------------------------------------------------------------- schemas
class ClientOut(Out):
    client_id: str
    name: str
    app_type: AppType = Field(description="non_interactive is idp's m2m.")
    callbacks: list[str] = Field(description="Redirect URIs, matched exactly.")
    allowed_logout_urls: list[str] = Field(description="Post-logout redirect URIs.")
    initiate_login_uri: str | None = Field(description="Where idp sends a browser to log in.")
    grant_types: list[str]
    token_endpoint_auth_method: AuthMethod
    is_first_party: bool
    mfa_policy: MfaPolicy | None = Field(description=MFA_POLICY)
    subject_type: SubjectType = Field(description=SUBJECT_TYPE)
    sector_identifier_uri: str | None = Field(description=SECTOR_URI)
    backchannel_logout_uri: str | None = Field(description=BCL_URI)
    backchannel_logout_session_required: bool = Field(description=BCL_SID)
    jwks: dict[str, Any] | None = Field(description=JWKS)
    jwks_uri: str | None = Field(description=JWKS_URI)
    token_endpoint_auth_signing_alg: SigningAlg | None = Field(description=SIGNING_ALG)
    require_pushed_authorization_requests: bool = Field(description=REQUIRE_PAR)
    dpop_bound_access_tokens: bool = Field(description=DPOP)
    id_token_signed_response_alg: IdTokenAlg | None = Field(description=IDT_ALG_DOC)
    client_secret: str | None = Field(
        None,
        description="Only on create, rotate-secret and a PATCH moving to client_secret_jwt.",
    )


class ClientCreate(Body):
    name: ClientName
    app_type: AppType = "regular_web"
    callbacks: list[Url] = Field([], max_length=100)
    allowed_logout_urls: list[Url] = Field([], max_length=100)
    initiate_login_uri: Url | None = None
    grant_types: list[GrantType] | None = Field(None, min_length=1, max_length=5)
    token_endpoint_auth_method: AuthMethod | None = None
    is_first_party: bool = True
    mfa_policy: MfaPolicy | None = Field(None, description=MFA_POLICY)
    subject_type: SubjectType = Field("public", description=SUBJECT_TYPE)
    sector_identifier_uri: Url | None = Field(None, description=SECTOR_URI)
    backchannel_logout_uri: Url | None = Field(None, description=BCL_URI)
    backchannel_logout_session_required: bool = Field(False, description=BCL_SID)
    jwks: dict[str, Any] | None = Field(None, description=JWKS)
    jwks_uri: Url | None = Field(None, description=JWKS_URI)
    token_endpoint_auth_signing_alg: SigningAlg | None = Field(None, description=SIGNING_ALG)
    require_pushed_authorization_requests: bool = Field(False, description=REQUIRE_PAR)
    dpop_bound_access_tokens: bool = Field(False, description=DPOP)
    id_token_signed_response_alg: IdTokenAlg | None = Field(None, description=IDT_ALG_DOC)


class ClientUpdate(Body):
    """Fields sent are changed; the lists are whole lists. ``initiate_login_uri: null``
    removes it, ``mfa_policy: null`` follows the tenant's policy again. ``app_type`` may be sent
    only with the client's own value."""

    name: ClientName | None = None
    app_type: AppType | None = None
    callbacks: list[Url] | None = Field(None, max_length=100)
    allowed_logout_urls: list[Url] | None = Field(None, max_length=100)
    initiate_login_uri: Url | None = None
    grant_types: list[GrantType] | None = Field(None, min_length=1, max_length=5)
    token_endpoint_auth_method: AuthMethod | None = None
    is_first_party: bool | None = None
    mfa_policy: MfaPolicy | None = Field(None, description=MFA_POLICY)
    subject_type: SubjectType | None = Field(None, description=SUBJECT_TYPE)
    sector_identifier_uri: Url | None = Field(None, description=SECTOR_URI + " null removes it.")
    backchannel_logout_uri: Url | None = Field(None, description=BCL_URI + " null removes it.")
    backchannel_logout_session_required: bool | None = Field(None, description=BCL_SID)
    jwks: dict[str, Any] | None = Field(None, description=JWKS)
    jwks_uri: Url | None = Field(None, description=JWKS_URI)
    token_endpoint_auth_signing_alg: SigningAlg | None = Field(None, description=SIGNING_ALG)
    require_pushed_authorization_requests: bool | None = Field(None, description=REQUIRE_PAR)
    dpop_bound_access_tokens: bool | None = Field(None, description=DPOP)
    id_token_signed_response_alg: IdTokenAlg | None = Field(None, description=IDT_ALG_DOC)

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: " + ", ".join(sorted(cls.model_fields)))
        return data


class ClientsQuery(PageQuery, FieldsQuery):
    app_type: str | None = Field(None, description="Comma-separated app types.")
    is_first_party: bool | None = None


# ---------------------------------------------------------------------------------- helpers
def client_json(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "app_type": TO_AUTH0[client.app_type],
        "callbacks": list(client.redirect_uris),
        "allowed_logout_urls": list(client.post_logout_redirect_uris),
        "initiate_login_uri": client.initiate_login_uri,
        "grant_types": list(client.grant_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "is_first_party": client.first_party,
        "mfa_policy": client.mfa_policy,
        "subject_type": client.subject_type,
        "sector_identifier_uri": client.sector_identifier_uri,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": bool(client.backchannel_logout_session_required),
        **client_auth.settings_json(client),
        "dpop_bound_access_tokens": bool(client.dpop_bound_access_tokens),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
    }


def find(client_id: str, lock: bool = False) -> Client:
    client = db.session.get(Client, client_id, with_for_update=True if lock else None)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    return client


def _name_free(name: str, other_than: str | None = None) -> None:
    taken = db.session.scalar(select(Client.client_id).where(Client.name == name.strip()))
    if taken is not None and taken != other_than:
        raise ConflictError(f"a client named {name.strip()!r} already exists")


_AUTH_FIELDS = {"token_endpoint_auth_method": "method", "jwks": "jwks", "jwks_uri": "jwks_uri",
                "token_endpoint_auth_signing_alg": "signing_alg",
                "require_pushed_authorization_requests": "require_par"}  # fmt: skip


def _auth_method(
    client: Client, body: ClientCreate | ClientUpdate, secret: str | None = None
) -> str | None:
    """The sent authentication fields, checked together (idp.oauth.client_auth); a new
    secret when the client moves to client_secret_jwt (``secret``: keep the one just made)."""
    sent = body.model_fields_set
    changes = {arg: getattr(body, name) for name, arg in _AUTH_FIELDS.items() if name in sent}
    return client_auth.configure(client, services().box, secret=secret, **changes)


def _mfa_policy(client: Client, policy: str | None) -> None:
    if policy is not None and client.app_type == "m2m":
        raise ValidationError("machine clients (non_interactive) log no user in: no mfa_policy")
    client.mfa_policy = policy  # None: the tenant's MFA_POLICY (idp.mfa.flow)


def _subjects(client: Client, body: ClientCreate | ClientUpdate, old: list[str]) -> None:
    """``subject_type``/``sector_identifier_uri`` as sent, checked with the callbacks as they
    are now (``old``: before this request) whenever one of the three was sent."""
    sent = body.model_fields_set & {"subject_type", "sector_identifier_uri", "callbacks"}
    if sent:
        uri = body.sector_identifier_uri if "sector_identifier_uri" in sent else pairwise.UNCHANGED
        pairwise.configure(services().config, client, body.subject_type, uri, old)


def _logout(client: Client, body: ClientCreate | ClientUpdate) -> None:
    """The back-channel logout fields as sent (idp.backchannel.service.configure)."""
    sent = body.model_fields_set
    backchannel.configure(
        client,
        body.backchannel_logout_uri if "backchannel_logout_uri" in sent else ...,
        body.backchannel_logout_session_required,
    )


def _id_token_alg(client: Client, body: ClientCreate | ClientUpdate) -> None:
    """As sent (null: RS256 again), one the tenant signs with now."""
    if "id_token_signed_response_alg" in body.model_fields_set:
        check_id_token_alg(body.id_token_signed_response_alg, services().keys)
        client.id_token_signed_response_alg = body.id_token_signed_response_alg


def _invalidate() -> None:
    services().clients.invalidate()  # this worker's cache; others' expire within seconds


ITEM = Item(ClientOut, lambda lock=False, id="": client_json(find(id, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/clients", scope="read:clients", tag=TAG, summary="List clients", query=ClientsQuery,
       response=ClientOut, list_key="clients")  # fmt: skip
def list_clients(query: ClientsQuery) -> Paged:
    """Oldest first; filters ``app_type`` (comma-separated) and ``is_first_party``."""
    types = {t.strip() for t in (query.app_type or "").split(",") if t.strip()}
    rows = [
        client_json(c)
        for c in oauth.list_clients(db.session)
        if (not types or TO_AUTH0[c.app_type] in types)
        and query.is_first_party in (None, c.first_party)
    ]
    return paginate(rows, query)


@route("/clients", "POST", scope="create:clients", tag=TAG, summary="Create a client",
       body=ClientCreate, response=ClientOut, status=201, id_field="client_id",
       after_commit=_invalidate)  # fmt: skip
def create_client(body: ClientCreate) -> dict[str, Any]:
    """The answer carries ``client_secret`` (confidential apps): the only time it is shown."""
    _name_free(body.name)
    refuse_switched_off(services().config, grant_types=body.grant_types,
                        dpop=body.dpop_bound_access_tokens,
                        logout_uri=body.backchannel_logout_uri)  # fmt: skip
    created = oauth.create_client(
        db.session, services().box, name=body.name, app_type=TO_IDP[body.app_type],
        redirect_uris=body.callbacks, post_logout_redirect_uris=body.allowed_logout_urls,
        first_party=body.is_first_party, initiate_login_uri=body.initiate_login_uri,
    )  # fmt: skip
    client = created.client
    db.session.flush()
    if body.grant_types is not None:
        oauth.update_client(db.session, client.client_id, grant_types=list(body.grant_types))
    _auth_method(client, body, created.client_secret)
    _mfa_policy(client, body.mfa_policy)
    _subjects(client, body, [])
    _logout(client, body)
    client.dpop_bound_access_tokens = body.dpop_bound_access_tokens
    _id_token_alg(client, body)
    out = client_json(client)
    if created.client_secret is not None:
        out["client_secret"] = created.client_secret
    return out


@route("/clients/{id}", scope="read:clients", tag=TAG, summary="Get a client",
       query=FieldsQuery, response=ClientOut, item=ITEM)  # fmt: skip
def get_client(id: str, query: FieldsQuery) -> dict[str, Any]:
    """Never the secret. The ``ETag`` header is this version, for ``If-Match``."""
    return client_json(find(id))


@route("/clients/{id}", "PATCH", scope="update:clients", tag=TAG, summary="Update a client",
       body=ClientUpdate, response=ClientOut, item=ITEM, after_commit=_invalidate)  # fmt: skip
def update_client(id: str, body: ClientUpdate) -> dict[str, Any]:
    """Send ``If-Match`` with the ETag read to refuse (412) a write over someone else's."""
    client = find(id, lock=True)
    callbacks = list(client.redirect_uris)
    if body.app_type is not None and TO_IDP[body.app_type] != client.app_type:
        raise ValidationError(
            f"app_type is fixed at creation ({TO_AUTH0[client.app_type]}); create a new client"
        )
    if body.name is not None:
        _name_free(body.name, other_than=client.client_id)
    refuse_switched_off(services().config, grant_types=body.grant_types,
                        had_grant_types=client.grant_types, dpop=body.dpop_bound_access_tokens,
                        had_dpop=client.dpop_bound_access_tokens,
                        logout_uri=body.backchannel_logout_uri,
                        had_logout_uri=client.backchannel_logout_uri)  # fmt: skip
    oauth.update_client(
        db.session, client.client_id, name=body.name, redirect_uris=body.callbacks,
        post_logout_redirect_uris=body.allowed_logout_urls, first_party=body.is_first_party,
        grant_types=None if body.grant_types is None else list(body.grant_types),
    )  # fmt: skip
    if "initiate_login_uri" in body.model_fields_set:
        oauth.set_initiate_login_uri(db.session, client.client_id, body.initiate_login_uri)
    new_secret = _auth_method(client, body)
    if "mfa_policy" in body.model_fields_set:
        _mfa_policy(client, body.mfa_policy)
    _subjects(client, body, callbacks)
    _logout(client, body)
    if body.dpop_bound_access_tokens is not None:
        client.dpop_bound_access_tokens = body.dpop_bound_access_tokens
    _id_token_alg(client, body)
    return client_json(client) | ({"client_secret": new_secret} if new_secret else {})


@route("/clients/{id}", "DELETE", scope="delete:clients", tag=TAG, summary="Delete a client",
       status=204, item=ITEM, after_commit=_invalidate)  # fmt: skip
def delete_client(id: str) -> None:
    """Its grants go with it; tokens it holds stop working once the client cache expires."""
    oauth.delete_client(db.session, find(id, lock=True).client_id)


@route("/clients/{id}/rotate-secret", "POST", scope="update:clients", tag=TAG,
       summary="Rotate a client's secret", response=ClientOut,
       after_commit=_invalidate)  # fmt: skip
def rotate_client_secret(id: str) -> dict[str, Any]:
    """A new ``client_secret``, shown in this answer only; the old one stops working."""
    client = find(id, lock=True)
    secret = oauth.rotate_secret(db.session, services().box, client.client_id)
    return client_json(client) | {"client_secret": secret}
