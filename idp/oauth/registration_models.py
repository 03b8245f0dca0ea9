"""What dynamic client registration stores (RFC 7591, RFC 7592): the operator's initial access
tokens and, per registered client, its registration access token and the metadata idp keeps
for it without a client column. Every token is stored as a digest (SecretBox.digest)."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class InitialAccessToken(Base):
    """RFC 7591 §3: the bearer token a registration must carry, made by the operator
    (``idp clients initial-token create``). ``uses`` is raised by one conditional UPDATE that
    also checks expiry, revocation and ``max_uses``, so concurrent registrations cannot use a
    token more often than allowed."""

    __tablename__ = "registration_initial_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer)  # None: never
    max_uses: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revoked_at: Mapped[int | None] = mapped_column(Integer)


class ClientRegistration(Base):
    """A dynamically registered client (RFC 7592 §1): the digest of its registration access
    token (rotated on each update by a conditional UPDATE on the old digest) and the accepted
    metadata that has no client column (contacts, software_id, ..., see
    idp.oauth.registration_metadata). Gone with its client."""

    __tablename__ = "client_registrations"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    access_token_digest: Mapped[str] = mapped_column(String(64))
    initial_token_id: Mapped[str | None] = mapped_column(String(40))
    kept: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)
