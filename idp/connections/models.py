"""Connections (the ways users sign in), the applications each is enabled for, and the
identities users hold through them (Auth0's model)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class Connection(Base):
    """A way to sign in: ``strategy`` says how (``database``: idp's own users and passwords),
    ``options`` its settings (secrets in them are to be stored encrypted)."""

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    strategy: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(255))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order on the login page
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


class ConnectionClient(Base):
    """Connection ``connection_id`` is enabled for application ``client_id``."""

    __tablename__ = "connection_clients"
    # the client cache reads a client's connections: by client_id
    __table_args__ = (Index("ix_connection_clients_client_id", "client_id"),)

    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )


class Identity(Base):
    """A user's account at a connection. Found by (connection, upstream user id) only: an
    email is never a key (the upstream may let anyone claim any address)."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("connection_id", "upstream_user_id"),
        # the users search filters by connection without reading identity rows (0018)
        Index("ix_identities_connection_id_user_id", "connection_id", "user_id"),
        # and pages through one connection's users in their created_at order (0038)
        Index("ix_identities_connection_page", "connection_id", "user_created_at", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # no cascade: removing a connection must not silently remove users' ways to sign in
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    provider: Mapped[str] = mapped_column(String(32))  # the connection's strategy
    upstream_user_id: Mapped[str] = mapped_column(String(255))
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Whether the upstream vouched for the user's email at the last login through it
    # (NULL: a database identity, or one linked by an operator).
    email_verified: Mapped[bool | None] = mapped_column(Boolean)
    # The upstream's tokens as sealed JSON (SecretBox), only when the connection keeps them.
    tokens: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int | None] = mapped_column(Integer)  # profile last refreshed
    # The user's created_at (it never changes, nor does an identity's user): the users
    # search's page of one connection is then one range of ix_identities_connection_page.
    user_created_at: Mapped[int] = mapped_column(Integer)


class SeenAssertion(Base):
    """A SAML assertion already used to sign in, kept until it expires (SAML 2.0 Profiles
    §4.1.4.5: the SP must not accept it twice); one row per assertion ID, shared by every
    worker and instance."""

    __tablename__ = "saml_seen_assertions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the ID
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
