"""Actions, their immutable versions, secrets, trigger bindings, executions and cache."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class Action(Base):
    """The editable draft. Saving it never touches live traffic; deploying makes a version."""

    __tablename__ = "actions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    trigger: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(Text)
    dependencies: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Hosts api.http may reach, as "host" or "host:port" (issue 4: per-action allow-list).
    allowed_hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    configuration: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    marketplace_slug: Mapped[str | None] = mapped_column(String(128))
    timeout_ms: Mapped[int] = mapped_column(Integer, default=5000)
    live_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


class ActionVersion(Base):
    """An immutable, numbered deployment of an action's code and dependencies."""

    __tablename__ = "action_versions"
    __table_args__ = (UniqueConstraint("action_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    action_id: Mapped[str] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(Text)
    dependencies: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Directory name under instance/actions/deps/, read-only, when there are dependencies.
    deps_dir: Mapped[str | None] = mapped_column(String(80))
    # "building" while pip installs the dependencies in the background, then "built" or
    # "failed"; only a built version is ever live (idp.actions.build).
    build_status: Mapped[str] = mapped_column(String(16), default="built", server_default="built")
    build_error: Mapped[str | None] = mapped_column(String(255))
    # The tail of pip's output (bounded, secrets scrubbed), kept for a failed or a slow build.
    build_output: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(Integer)


class ActionSecret(Base):
    """Write-only: the value is encrypted with the instance key and never listed."""

    __tablename__ = "action_secrets"

    action_id: Mapped[str] = mapped_column(
        ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[int] = mapped_column(Integer)


class ActionBinding(Base):
    """One link of a trigger's ordered chain."""

    __tablename__ = "action_bindings"
    __table_args__ = (UniqueConstraint("trigger", "action_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(40), index=True)
    action_id: Mapped[str] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    allowed_to_fail: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(Integer)


class ActionExecution(Base):
    """One run: linked to the login or token request it served, or marked as a test."""

    __tablename__ = "action_executions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    action_id: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(24))
    error: Mapped[str | None] = mapped_column(String(1024))
    logs: Mapped[str] = mapped_column(Text, default="")
    commands: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    duration_ms: Mapped[float] = mapped_column(Float)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(Integer, index=True)


class ActionCacheEntry(Base):
    """``api.cache``: the one deliberate store that outlives an execution. Not a foreign key:
    the test runner keeps its entries under ``<action id>:test``."""

    __tablename__ = "action_cache"

    action_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(Integer)
