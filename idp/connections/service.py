"""Connections, their applications and users' identities: what the CLI, the client cache, the
login pages and the Actions events read and change.

For now one strategy exists, ``database`` (idp's own users and passwords), and one connection of
it, named ``database``: migration 0013 created it, enabled it for every application and gave
every user an identity through it. New applications get it enabled, as Auth0 does.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.connections.models import Connection, ConnectionClient, Identity
from idp.core import clock
from idp.core.crypto import random_token
from idp.core.errors import NotFoundError, ValidationError
from idp.identity.models import User
from idp.oauth.models import Client

DATABASE = "database"  # the name and the strategy of idp's own users
# The strategies a connection may have, as data: oidc, oauth2, the social presets and samlp
# join this table when their code does.
STRATEGIES: dict[str, dict[str, Any]] = {
    DATABASE: {"social": False},
}
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def validate_name(name: str) -> str:
    if not NAME.match(name):
        raise ValidationError(
            f"a connection name is 1 to 63 of a-z, 0-9 and '-', not starting with '-': {name!r}"
        )
    return name


def create_connection(
    session: Session,
    *,
    name: str,
    strategy: str,
    display_name: str | None = None,
    options: dict[str, Any] | None = None,
    position: int | None = None,
) -> Connection:
    validate_name(name)
    if strategy not in STRATEGIES:
        raise ValidationError(f"strategy must be one of {', '.join(STRATEGIES)}")
    if session.scalar(select(Connection.id).where(Connection.name == name)):
        raise ValidationError(f"a connection named {name!r} exists")
    if position is None:
        last = session.scalar(select(Connection.position).order_by(Connection.position.desc()))
        position = 0 if last is None else last + 1
    now = clock.now()
    connection = Connection(
        id="con_" + random_token(12),
        name=name,
        strategy=strategy,
        display_name=display_name,
        options=dict(options or {}),
        position=position,
        created_at=now,
        updated_at=now,
    )
    session.add(connection)
    return connection


def get_connection(session: Session, name: str) -> Connection:
    connection = session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise NotFoundError(f"no connection {name!r}")
    return connection


def list_connections(session: Session) -> list[Connection]:
    return list(session.scalars(select(Connection).order_by(Connection.position, Connection.name)))


def enabled_clients(session: Session, connection: Connection) -> list[str]:
    return list(
        session.scalars(
            select(ConnectionClient.client_id)
            .where(ConnectionClient.connection_id == connection.id)
            .order_by(ConnectionClient.client_id)
        )
    )


def client_connections(session: Session, client_id: str) -> tuple[str, ...]:
    """Names of the connections enabled for ``client_id``, in login-page order (one indexed
    read; the client cache keeps the answer with the client)."""
    return tuple(
        session.scalars(
            select(Connection.name)
            .join(ConnectionClient, ConnectionClient.connection_id == Connection.id)
            .where(ConnectionClient.client_id == client_id)
            .order_by(Connection.position, Connection.name)
        )
    )


def is_enabled(client: Any, name: str) -> bool:
    """Whether connection ``name`` is enabled for ``client`` (a cached ``ClientInfo``)."""
    return name in getattr(client, "connections", ())


def enable(session: Session, name: str, client_id: str) -> Connection:
    """Enable connection ``name`` for application ``client_id`` (nothing if it is already)."""
    connection = get_connection(session, name)
    if session.get(Client, client_id) is None:
        raise NotFoundError(f"no client {client_id!r}")
    if session.get(ConnectionClient, (connection.id, client_id)) is None:
        session.add(ConnectionClient(connection_id=connection.id, client_id=client_id))
    return connection


def disable(session: Session, name: str, client_id: str) -> Connection:
    connection = get_connection(session, name)
    if session.get(Client, client_id) is None:
        raise NotFoundError(f"no client {client_id!r}")
    session.execute(
        delete(ConnectionClient).where(
            ConnectionClient.connection_id == connection.id,
            ConnectionClient.client_id == client_id,
        )
    )
    return connection


def enable_defaults(session: Session, client_id: str) -> None:
    """A new application gets the database connection (Auth0 enables it on new apps)."""
    connection = get_connection(session, DATABASE)
    session.add(ConnectionClient(connection_id=connection.id, client_id=client_id))


def add_identity(
    session: Session,
    user: User,
    connection: Connection,
    upstream_user_id: str,
    profile: dict[str, Any] | None = None,
) -> Identity:
    """Give ``user`` an identity at ``connection``; one upstream account is one identity."""
    taken = session.scalar(
        select(Identity.id).where(
            Identity.connection_id == connection.id,
            Identity.upstream_user_id == upstream_user_id,
        )
    )
    if taken:
        raise ValidationError(
            f"connection {connection.name!r} already has an identity {upstream_user_id!r}"
        )
    identity = Identity(
        id="idn_" + random_token(12),
        user_id=user.id,
        connection_id=connection.id,
        provider=connection.strategy,
        upstream_user_id=upstream_user_id,
        profile=dict(profile or {}),
        created_at=clock.now(),
    )
    session.add(identity)
    return identity


def add_database_identity(session: Session, user: User) -> Identity:
    """The identity of a user created through the database connection: its id is the user's."""
    return add_identity(session, user, get_connection(session, DATABASE), user.id)


def find_identity(
    session: Session, connection: Connection, upstream_user_id: str
) -> Identity | None:
    """The identity of that upstream account: by (connection, upstream user id), nothing else."""
    return session.scalar(
        select(Identity).where(
            Identity.connection_id == connection.id,
            Identity.upstream_user_id == upstream_user_id,
        )
    )


def identities_of(session: Session, user_id: str) -> list[tuple[Identity, Connection]]:
    """The user's identities, oldest first (within one second: in login-page order)."""
    rows = session.execute(
        select(Identity, Connection)
        .join(Connection, Connection.id == Identity.connection_id)
        .where(Identity.user_id == user_id)
        .order_by(Identity.created_at, Connection.position, Connection.name, Identity.id)
    )
    return [(row[0], row[1]) for row in rows]


def connection_dict(connection: Connection) -> dict[str, Any]:
    """A connection as an event or the CLI shows it (options stay out: secrets will live there)."""
    return {"id": connection.id, "name": connection.name, "strategy": connection.strategy}


def identity_dicts(session: Session, user_id: str) -> list[dict[str, Any]]:
    """``event.user.identities``, in Auth0's shape."""
    return [
        {
            "provider": identity.provider,
            "connection": connection.name,
            "user_id": identity.upstream_user_id,
            "isSocial": bool(STRATEGIES.get(connection.strategy, {}).get("social", True)),
        }
        for identity, connection in identities_of(session, user_id)
    ]
