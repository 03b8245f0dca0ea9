"""Database-connection users: argon2id passwords (RFC 9106), timing-safe authentication."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.connections import service as connections
from idp.core import clock, tracing
from idp.core.crypto import random_token
from idp.core.errors import NotFoundError, ValidationError
from idp.identity import profile
from idp.identity.models import User
from idp.stores import STORES

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_ARGON2 = {"idp.hash.algorithm": "argon2id"}  # the span says which work, never whose


@dataclass
class Passwords:
    """argon2id with configured parameters; a dummy hash keeps unknown-user logins as slow
    as wrong-password ones (no enumeration by timing, S-BF-07).

    One hash at a time per process: each takes ``ARGON2_MEMORY_KIB`` (19 MiB), which glibc
    keeps once used, so a worker whose N threads hashed at once would stay N times that larger
    for good (``idp serve`` also keeps glibc to one malloc arena, ``MALLOC_ARENA_MAX=1``: with
    an arena per thread a worker with two threads stayed 20 MB larger even hashing one at a
    time, bench/memory.py: 139.6 MB against 119.1). The hash is CPU-bound and the workers
    already fill the cores, so serialising it within a worker costs no throughput."""

    hasher: PasswordHasher
    dummy_hash: str
    _one_at_a_time: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, time_cost: int, memory_kib: int, parallelism: int) -> Passwords:
        hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        return cls(hasher, hasher.hash(random_token(16)))

    def hash(self, password: str) -> str:
        with self._one_at_a_time, tracing.span("password.hash", _ARGON2):  # the hash, not the wait
            return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        with self._one_at_a_time, tracing.span("password.verify", _ARGON2):
            try:
                ok = self.hasher.verify(stored or self.dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return ok and stored is not None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session, passwords: Passwords, *, email: str, password: str, email_verified: bool
) -> User:
    email = normalise_email(email)
    if not EMAIL.match(email):
        raise ValidationError(f"not an email address: {email!r}")
    if len(password) < 8:
        raise ValidationError("password must be at least 8 characters")
    if session.scalar(select(User).where(User.email == email)):
        raise ValidationError(f"a user with email {email!r} exists")
    now = clock.now()
    user = User(
        id="usr_" + random_token(12),
        email=email,
        email_verified=email_verified,
        password_hash=passwords.hash(password),
        created_at=now,
        updated_at=now,
        app_metadata={},
        user_metadata={},
        profile={},
        logins_count=0,
    )
    session.add(user)
    connections.add_database_identity(session, user)  # sign-up, the CLI: the database connection
    return user


def authenticate(session: Session, passwords: Passwords, email: str, password: str) -> User | None:
    """Check a password; the same work is done whether or not the user exists.

    The read transaction ends before the ~40 ms hash: on SQLite every transaction holds the
    write lock (BEGIN IMMEDIATE), and holding it through a hash would serialise all logins."""
    user = STORES.users.find_by_email(session, normalise_email(email))
    stored = user.password_hash if user else None
    session.commit()
    ok = passwords.verify(stored, password)
    if user is None or not ok:
        return None
    if user.password_hash and passwords.hasher.check_needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    count_login(session, user)
    return user


def count_login(session: Session, user: User) -> None:
    """One more login, counted in the database (two at once both count)."""
    STORES.users.count_login(session, user)


def find_user_id(session: Session, email: str) -> str | None:
    return session.scalar(select(User.id).where(User.email == normalise_email(email)))


def get_user(session: Session, user_id_or_email: str) -> User:
    user = session.get(User, user_id_or_email) or session.scalar(
        select(User).where(User.email == normalise_email(user_id_or_email))
    )
    if user is None:
        raise NotFoundError(f"no user {user_id_or_email!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.created_at)))


def delete_user(session: Session, user_id_or_email: str) -> None:
    session.delete(get_user(session, user_id_or_email))


def set_password(session: Session, passwords: Passwords, user: User, password: str) -> None:
    user.password_hash = passwords.hash(password)
    user.updated_at = clock.now()


def update_profile(session: Session, user_id_or_email: str, changes: dict[str, Any]) -> bool:
    """Set or remove standard claims (``idp.identity.profile``); whether one changed."""
    return profile.update_profile(get_user(session, user_id_or_email), changes)
