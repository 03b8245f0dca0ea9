"""``/api/v2/users`` and ``/api/v2/users-by-email``: users, as Auth0 Management API v2's
"Users" (``read:users``, ``create:users``, ``update:users``, ``delete:users``).

A user is Auth0's object: ``user_id``, ``email``, ``email_verified``, the OIDC standard
claims it has (``name``, ``given_name``, ``family_name``, ``nickname``, ``picture``, ... as
``idp.identity.profile`` keeps them; absent ones are left out), ``identities``,
``app_metadata``, ``user_metadata``, ``blocked``, ``logins_count``, ``created_at`` and
``updated_at`` (ISO 8601). ``last_login`` is not kept by idp, so never answered.

- ``GET /users``: ``q`` in Auth0's user search v3 syntax, the subset ``idp.identity.search``
  documents (email, name, user_id, email_verified, identities.connection, app_metadata.KEY,
  created_at, updated_at, logins_count), with ``sort``, ``page``/``per_page`` (only the first
  1000 results, as Auth0), ``include_totals``, ``fields``/``include_fields``; ``search_engine``
  may only be ``v3``.
- ``POST /users``: in the ``database`` connection (a password user; others are a 400), the
  password through idp's password policy, 409 when the email is taken.
- ``PATCH /users/{id}``: ``app_metadata``/``user_metadata`` merged one level deep (a key set to
  ``null`` is removed), a claim set to ``null`` is removed; a new ``password`` ends the user's
  sessions and refresh tokens as a reset does; ``blocked`` refuses every login and refresh.
- ``DELETE /users/{id}``: the user and everything theirs (``idp.identity.operator``).

The rules are ``idp.identity.operator``'s; a refusal names the property, in Auth0's words.
Refused rather than ignored: Auth0 fields idp has no use for (``username``, ``verify_email``,
``phone_verified``...; idp's ``phone_number_verified`` is the OIDC claim's name).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from flask import g, request
from pydantic import Field, model_validator
from sqlalchemy import select

from idp.audit import events
from idp.audit import service as audit
from idp.connections import service as connections
from idp.connections import strategies
from idp.connections.models import Connection, Identity
from idp.core.errors import NotFoundError, ValidationError
from idp.core.net import client_ip
from idp.extensions import db, services
from idp.identity import operator, search
from idp.identity import profile as claims_of
from idp.identity.models import User
from idp.management.admin_guard import guard_admin
from idp.management.identities import IdentityOut
from idp.management.registry import Item, Paged, route
from idp.management.schemas import iso
from idp.management.validation import Body, FieldsQuery, Out, PageQuery, SchemaRefusal

TAG = "users"
Text = str | None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(**kwargs: Any) -> Any:
    """A field that may be left out but is not nullable: pydantic does not validate a
    default, so absent is fine and an explicit ``null`` is a 400 naming the field (the
    document shows no ``null`` default, which its type would contradict)."""
    return Field(None, json_schema_extra=_no_default, **kwargs)


# ---------------------------------------------------------------------------------- schemas
class UserOut(Out):
    user_id: str
    email: str
    email_verified: bool
    name: Text = None
    given_name: Text = None
    family_name: Text = None
    middle_name: Text = None
    nickname: Text = None
    preferred_username: Text = None
    profile: Text = None
    picture: Text = None
    website: Text = None
    gender: Text = None
    birthdate: Text = None
    zoneinfo: Text = None
    locale: Text = None
    phone_number: Text = None
    phone_number_verified: bool | None = None
    address: dict[str, str] | None = None
    identities: list[IdentityOut] = []
    app_metadata: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}
    blocked: bool = False
    logins_count: int = 0
    created_at: str
    updated_at: str


class Claims(Body):
    """The OIDC standard claims an operator sets (``idp.identity.profile`` checks them)."""

    name: Text = Field(None, description="null removes it (on update).")
    given_name: Text = None
    family_name: Text = None
    middle_name: Text = None
    nickname: Text = None
    preferred_username: Text = None
    profile: Text = Field(None, description="An http(s) URL.")
    picture: Text = Field(None, description="An http(s) URL.")
    website: Text = Field(None, description="An http(s) URL.")
    gender: Text = None
    birthdate: Text = Field(None, description="YYYY-MM-DD or YYYY.")
    zoneinfo: Text = Field(None, description="An IANA time zone.")
    locale: Text = Field(None, description="A BCP 47 language tag.")
    phone_number: Text = Field(None, description="E.164.")
    phone_number_verified: bool | None = None
    address: dict[str, Any] | None = Field(None, description="OIDC Core §5.1.1's members.")

    def sent_claims(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in claims_of.EDITABLE if c in self.model_fields_set}


class UserCreate(Claims):
    connection: str = Field(min_length=1, max_length=63, description="database")
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    email_verified: bool = False
    app_metadata: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}
    blocked: bool = False


class UserUpdate(Claims):
    """Fields sent are changed. ``null`` is refused where there is nothing to remove (the
    JSON Schema says ``string``, ``boolean``, ``object``)."""

    email: str = absent(min_length=1, max_length=320)
    email_verified: bool = absent()
    password: str = absent(min_length=1, max_length=1024)
    connection: str = absent(min_length=1, max_length=63, description="database.")
    app_metadata: dict[str, Any] = absent(description="Merged; a key set to null goes.")
    user_metadata: dict[str, Any] = absent(description="Merged; a key set to null goes.")
    blocked: bool = absent(description="true: no login, no token refresh.")

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: " + ", ".join(sorted(cls.model_fields)))
        return data

    def sent(self, name: str) -> Any:
        return getattr(self, name) if name in self.model_fields_set else None


class UsersQuery(PageQuery, FieldsQuery):
    q: str | None = Field(None, max_length=2000, description="User search v3 syntax.")
    sort: str | None = Field(None, max_length=40, description="FIELD:1 or FIELD:-1.")
    search_engine: Literal["v3"] | None = Field(None, description="v3 only.")


class ByEmailQuery(FieldsQuery):
    email: str = Field(min_length=1, max_length=320)


# ---------------------------------------------------------------------------------- helpers
def _identities(user_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Auth0's ``identities`` of several users in one query (a page of 100 is one read)."""
    out: dict[str, list[dict[str, Any]]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return out
    # columns, not entities: a connection's options (sealed JSON) are never decoded here
    rows = db.session.execute(
        select(Identity.user_id, Identity.provider, Identity.upstream_user_id, Identity.profile,
               Connection.name, Connection.strategy)
        .join(Connection, Connection.id == Identity.connection_id)
        .where(Identity.user_id.in_(user_ids))
        .order_by(Identity.created_at, Connection.position, Connection.name, Identity.id)
    )  # fmt: skip
    for user_id, provider, upstream, profile, name, strategy in rows:
        row: dict[str, Any] = {
            "connection": name,
            "provider": provider,
            "user_id": upstream,
            "isSocial": strategies.is_social(strategy),
        }
        if profile:
            row["profileData"] = dict(profile)
        out[user_id].append(row)
    return out


def users_json(users: list[User], identities: bool = True) -> list[dict[str, Any]]:
    held = _identities([u.id for u in users]) if identities else {}
    out = []
    for user in users:
        data = claims_of.standard_claims(user)
        data.update(
            user_id=user.id,
            identities=held.get(user.id, []),
            app_metadata=dict(user.app_metadata or {}),
            user_metadata=dict(user.user_metadata or {}),
            blocked=bool(user.blocked),
            logins_count=user.logins_count or 0,
            created_at=iso(user.created_at),
            updated_at=iso(user.updated_at),
        )
        out.append(data)
    return out


def user_json(user: User) -> dict[str, Any]:
    return users_json([user])[0]


def find(user_id: str, lock: bool = False) -> User:
    user = db.session.get(User, user_id, with_for_update=True if lock else None)
    if user is None:
        raise NotFoundError(f"no user {user_id!r}")  # Auth0: "The user does not exist."
    return user


def origin() -> audit.Origin:
    """Who asked, for the user's own tenant log events."""
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                   services().trusted_proxies)  # fmt: skip
    return audit.Origin(ip, request.headers.get("User-Agent"))


def by_operator(what: str) -> str:
    """The description of a user's event caused through the API, naming the calling client."""
    return f"{what} by an operator (management API, {g.management_token['client_id']})"


@contextmanager
def named() -> Iterator[None]:
    """``idp.identity.operator``'s refusals in Auth0's words, naming the property."""
    try:
        yield
    except operator.InvalidProperty as exc:
        message = f"Payload validation error: '{exc.reason}' on property {exc.prop}."
        raise SchemaRefusal(message, "invalid_body") from None


def _fields(query: FieldsQuery) -> set[str] | None:
    if not query.fields:
        return None
    return {f.strip() for f in query.fields.split(",") if f.strip()}


def _wants_identities(query: FieldsQuery) -> bool:
    names = _fields(query)
    return names is None or ("identities" in names) == query.include_fields


ITEM = Item(UserOut, lambda lock=False, user_id="": user_json(find(user_id, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/users", scope="read:users", tag=TAG, summary="List or search users",
       query=UsersQuery, response=UserOut, list_key="users", errors=(400,))  # fmt: skip
def list_users(query: UsersQuery) -> Paged:
    """Oldest first unless ``sort`` says otherwise; ``q`` as ``idp.identity.search`` says."""
    try:
        page = search.search_users(
            db.session, query.q or None, sort=query.sort or None, page=query.page,
            per_page=query.per_page, include_totals=query.include_totals,
        )  # fmt: skip
    except ValidationError as exc:
        text = str(exc)
        prop = next((p for p in ("sort", "per_page", "page") if text.startswith(p)), "q")
        prop = "page" if "first" in text else prop
        message = f"Query validation error: '{text}' on property {prop}."
        raise SchemaRefusal(message, "invalid_query_string") from None
    rows = users_json(page.users, identities=_wants_identities(query))
    return Paged(rows, page.total or 0)


@route("/users-by-email", scope="read:users", tag=TAG, summary="Find users by email",
       query=ByEmailQuery, response=list[UserOut])  # fmt: skip
def users_by_email(query: ByEmailQuery) -> list[dict[str, Any]]:
    """Exact, case-insensitive (emails are stored lowercase); a list, as Auth0 answers."""
    return users_json(search.users_by_email(db.session, query.email), _wants_identities(query))


@route("/users", "POST", scope="create:users", tag=TAG, summary="Create a user",
       body=UserCreate, response=UserOut, status=201, id_field="user_id",
       errors=(409,))  # fmt: skip
def create_user(body: UserCreate) -> dict[str, Any]:
    """A password user of the ``database`` connection; 409 when the email is taken."""
    svc = services()
    with named():
        user = operator.create_user(
            db.session, svc.passwords, svc.policy, connection=body.connection,
            email=body.email, password=body.password, email_verified=body.email_verified,
            claims={k: v for k, v in body.sent_claims().items() if v is not None},
            app_metadata=body.app_metadata, user_metadata=body.user_metadata,
            blocked=body.blocked,
        )  # fmt: skip
    return user_json(user)


@route("/users/{user_id}", scope="read:users", tag=TAG, summary="Get a user",
       query=FieldsQuery, response=UserOut, item=ITEM)  # fmt: skip
def get_user(user_id: str, query: FieldsQuery) -> dict[str, Any]:
    """The ``ETag`` header is this version, for ``If-Match``."""
    return user_json(find(user_id))


@route("/users/{user_id}", "PATCH", scope="update:users", tag=TAG, summary="Update a user",
       body=UserUpdate, response=UserOut, item=ITEM, errors=(409,))  # fmt: skip
def update_user(user_id: str, body: UserUpdate) -> dict[str, Any]:
    """Send ``If-Match`` with the ETag read to refuse (412) a write over someone else's."""
    user = find(user_id, lock=True)
    credentials = [k for k in ("email", "email_verified", "password", "blocked")
                   if body.sent(k) is not None]  # fmt: skip
    if credentials:
        guard_admin(user.id, f"{', '.join(credentials)} change")
    connection = body.sent("connection")
    with named():
        if connection is not None and connection != connections.DATABASE:
            raise operator.InvalidProperty(
                "connection", f"only the {connections.DATABASE!r} connection's "
                "users are updated here"
            )  # fmt: skip
        changes = operator.Changes(
            email=body.sent("email"), email_verified=body.sent("email_verified"),
            password=body.sent("password"), claims=body.sent_claims(),
            app_metadata=body.sent("app_metadata"), user_metadata=body.sent("user_metadata"),
            blocked=body.sent("blocked"),
        )  # fmt: skip
        svc = services()
        done = operator.update_user(db.session, svc.passwords, svc.policy, user, changes)
    if done.password_set:  # the user's history, as the CLI's set-password records it
        audit.record(db.session, events.PASSWORD_RESET, by_operator("Password set"), origin(),
                     user_id=user.id)  # fmt: skip
    if done.blocked is not None:
        kind = events.ACCOUNT_BLOCKED if done.blocked else events.ACCOUNT_UNBLOCKED
        what = "Blocked" if done.blocked else "Unblocked"
        audit.record(db.session, kind, by_operator(what), origin(), user_id=user.id,
                     details={"sessions_ended": done.sessions_ended})  # fmt: skip
    return user_json(user)


@route("/users/{user_id}", "DELETE", scope="delete:users", tag=TAG, summary="Delete a user",
       status=204, item=ITEM)  # fmt: skip
def delete_user(user_id: str) -> None:
    """The user and everything theirs: sessions, tokens, identities, MFA, consents."""
    user = find(user_id, lock=True)
    guard_admin(user.id, "deletion")
    email = user.email
    operator.delete_user(db.session, user)
    services().shields.unblock(email)  # brute-force counters: a new account starts clean
