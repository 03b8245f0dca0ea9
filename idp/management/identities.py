"""``/api/v2/users/{id}/identities``: a user's identities, and the operators' account linking
(Auth0 Management API v2: ``POST /users/{id}/identities`` links, ``DELETE
/users/{id}/identities/{provider}/{user_id}`` unlinks; ``update:users``). Listing them is
``GET`` on the same path with ``read:users`` (Auth0 lists them inside ``GET /users/{id}``).

An identity is Auth0's ``{connection, provider, user_id, isSocial, profileData?}``; ``user_id``
is the upstream's id, and the user's own id never changes. Linking takes ``{connection |
connection_id, user_id, provider?, profileData?}`` (Auth0's ``link_with``, a second user's
token, is not supported: idp links an upstream account, not two users). In the ``DELETE`` path
``{provider}`` is Auth0's provider (the strategy) or, since two connections may share a
strategy and an upstream id, the connection's name; an ambiguous provider is a 409.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from idp.connections import service as connections
from idp.connections import strategies
from idp.core.errors import ConflictError, NotFoundError
from idp.extensions import db
from idp.identity.models import User
from idp.management.admin_guard import guard_admin
from idp.management.connections import find
from idp.management.registry import route
from idp.management.validation import Body, IntOrString, Out, SchemaError

TAG = "users"


class IdentityOut(Out):
    connection: str
    provider: str = Field(description="The connection's strategy.")
    user_id: str = Field(description="The upstream's id of the account.")
    isSocial: bool
    profileData: dict[str, Any] | None = Field(None, description="The upstream profile.")


class LinkIdentity(Body):
    """Name the upstream account by ``connection`` (name) or ``connection_id`` and its
    ``user_id``; Auth0's ``link_with`` (a second user's token) is not supported."""

    connection: str | None = Field(None, min_length=1, max_length=63)
    connection_id: str | None = Field(None, min_length=1, max_length=63)
    user_id: IntOrString = Field(min_length=1, description="The upstream's id (or a number).")
    provider: str | None = Field(None, min_length=1, max_length=32)
    profileData: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _one_connection(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "link_with" in data:
                raise ValueError("'link_with' (linking two users) is not supported; name the "
                                 "upstream account with 'connection' and 'user_id'")  # fmt: skip
            if ("connection" in data) == ("connection_id" in data):
                raise ValueError("name the connection with 'connection' or 'connection_id' (one)")
        return data


def _user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id!r}")
    return user


def identities_json(user_id: str) -> list[dict[str, Any]]:
    """Auth0's ``identities``; ``profileData`` for the upstream ones (the upstream profile as
    received; the kept upstream tokens live sealed elsewhere and never appear)."""
    rows = []
    for identity, connection in connections.identities_of(db.session, user_id):
        row: dict[str, Any] = {
            "connection": connection.name,
            "provider": identity.provider,
            "user_id": identity.upstream_user_id,
            "isSocial": strategies.is_social(connection.strategy),
        }
        if identity.profile:
            row["profileData"] = dict(identity.profile)
        rows.append(row)
    return rows


@route("/users/{user_id}/identities", scope="read:users", tag=TAG,
       summary="List a user's identities", response=list[IdentityOut])  # fmt: skip
def list_identities(user_id: str) -> list[dict[str, Any]]:
    return identities_json(_user(user_id).id)


@route("/users/{user_id}/identities", "POST", scope="update:users", tag=TAG, status=201,
       summary="Link an upstream account to a user", body=LinkIdentity,
       response=list[IdentityOut])  # fmt: skip
def link_identity(user_id: str, body: LinkIdentity) -> list[dict[str, Any]]:
    """Add an identity (201, the user's identities, as Auth0 answers). An upstream account
    already linked to anyone is a 409; ``provider``, when sent, must be the strategy."""
    user = _user(user_id)
    guard_admin(user.id, "linking an identity")
    connection = find(str(body.connection or body.connection_id))
    if body.provider is not None and body.provider != connection.strategy:
        raise SchemaError(f"'provider' of {connection.name!r} is {connection.strategy!r}")
    connections.link_identity(db.session, user.id, connection.name, body.user_id,
                              body.profileData)  # fmt: skip
    return identities_json(user.id)


@route("/users/{user_id}/identities/{provider}/{upstream_user_id:path}", "DELETE",
       scope="update:users", tag=TAG, summary="Unlink an identity from a user",
       response=list[IdentityOut], errors=(409,))  # fmt: skip
def unlink_identity(user_id: str, provider: str, upstream_user_id: str) -> list[dict[str, Any]]:
    """Remove one identity (200, the identities left, as Auth0 answers); never the last one
    nor the user's own database identity (409)."""
    user = _user(user_id)
    guard_admin(user.id, "unlinking an identity")
    matches = [
        connection
        for identity, connection in connections.identities_of(db.session, user.id)
        if identity.upstream_user_id == upstream_user_id
        and provider in (connection.name, identity.provider)
    ]
    if not matches:
        raise NotFoundError(f"user {user.id!r} has no identity {provider}/{upstream_user_id}")
    if len(matches) > 1:
        raise ConflictError(
            f"{provider}/{upstream_user_id} is at several connections "
            f"({', '.join(c.name for c in matches)}); name the connection instead of {provider!r}"
        )
    connections.unlink_identity(db.session, user.id, matches[0].name, upstream_user_id)
    return identities_json(user.id)
