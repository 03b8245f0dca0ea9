"""Version stamps of the per-worker caches, so a change made by one process reaches the others.

Each worker caches clients, signing keys, Actions' chains, the tenant settings and the
client-credentials tokens it may hand out again. Each cache *family* has a version; whoever
changes what a family caches bumps its version after the commit, and a cache that sees a
version other than the one it was filled under drops its content. The caches' own lifetimes
(``CLIENT_CACHE_SECONDS`` and the rest) stay as a backstop; the client cache relies on it only
when the versions cannot be read (:meth:`Versions.verified`).

* :class:`FileVersions` (no ``REDIS_URL``: one machine): a stamp file per family in the
  instance folder, replaced atomically on a bump; a read is one ``stat``, so every worker of
  the machine sees a change at its next use.
* :class:`RedisVersions` (``REDIS_URL``: any number of instances): a Redis key per family set
  to a new random value on a bump (not ``INCR``: a counter starts again at 1 after Redis lost
  its data, and could repeat a version a worker saw before). A worker reads all families with
  one ``MGET`` at most every
  ``INVALIDATION_CHECK_SECONDS``; a change therefore reaches every worker of every instance
  within that delay. Client-credentials token reuse reads its version at every request (one
  ``GET``, cheaper than the signature it saves), so a revoked token is never handed out again
  by any instance once the revocation has answered. If Redis cannot be reached, the last
  versions read are kept and the caches fall back on their lifetimes (logged); a bump Redis
  did not take is sent again at the worker's next read (a stamp that could not be moved, too).

Why versions rather than pub/sub: a version cannot be missed. A published message is lost by a
worker that was reconnecting, forking or not yet started, which would then need a version
anyway to catch up; a version also needs no listener thread per worker and costs one round trip
per interval whatever the rate of changes.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

log = logging.getLogger(__name__)

CLIENTS, KEYS, ACTIONS, TENANT, TOKEN_REUSE = "clients", "keys", "actions", "tenant", "token_reuse"
FAMILIES = (CLIENTS, KEYS, ACTIONS, TENANT, TOKEN_REUSE)
REDIS_PREFIX = "idp:v:"
_WARN_EVERY = 30.0  # seconds between two warnings that Redis is unreachable


# The tables each family caches: a command-line change to them moves the family's version.
TABLES: dict[str, tuple[str, ...]] = {
    "clients": (CLIENTS,), "client_grants": (CLIENTS,), "resource_servers": (CLIENTS,),
    "connections": (CLIENTS,), "connection_clients": (CLIENTS,),
    "signing_keys": (KEYS, TOKEN_REUSE),
    "actions": (ACTIONS,), "action_versions": (ACTIONS,), "action_secrets": (ACTIONS,),
    "action_bindings": (ACTIONS,),
    "tenant_settings": (TENANT,),
}  # fmt: skip


class Versions(Protocol):
    def current(self, family: str, fresh: bool = False) -> str:
        """The family's version as this worker knows it; ``fresh``: ask the source now."""

    def bump(self, family: str) -> None:
        """Something the family caches changed (call after the commit)."""

    def verified(self) -> bool:
        """Whether the last read of the versions reached their source: a cache may then keep
        what it holds beyond its backstop lifetime, since a change would have moved them."""

    def pending(self) -> frozenset[str]:
        """The families whose bump has not reached the source yet (sent again at later reads)."""

    def missable(self) -> frozenset[str]:
        """The pending families a server could miss: it would trust its unchanged version (and
        keep a cache beyond its short lifetime) although the change was committed."""

    def outages(self) -> int:
        """How many times the versions could not be read (or, for stamps, not moved): a change
        committed meanwhile may have moved nothing (its bump failed), and reads the same once
        the source answers again, so what a cache loaded before may be kept for its backstop
        lifetime only."""

    def watch(self, session: Session) -> None:
        """Bump the families whose tables ``session`` writes, after its commit."""


class _Watching:
    def bump(self, family: str) -> None:
        raise NotImplementedError

    def watch(self, session: Session) -> None:
        """After each commit of ``session``, bump the families of the tables it wrote (ORM
        flushes and bulk statements alike): for the command line, whose changes are not made
        through the API's routes (they bump explicitly). A rolled-back write may still bump:
        a needless reload, never a stale cache."""
        touched: set[str] = set()

        def flushed(flushing: Session, _context: Any) -> None:
            for obj in (*flushing.new, *flushing.dirty, *flushing.deleted):
                touched.update(TABLES.get(getattr(obj, "__tablename__", ""), ()))

        def executed(state: ORMExecuteState) -> None:
            if state.is_insert or state.is_update or state.is_delete:
                table = getattr(state.statement, "table", None)
                touched.update(TABLES.get(getattr(table, "name", ""), ()))

        def committed(_session: Session) -> None:
            for family in sorted(touched):
                self.bump(family)
            touched.clear()

        event.listen(session, "after_flush", flushed)
        event.listen(session, "do_orm_execute", executed)
        event.listen(session, "after_commit", committed)


def _paths(instance: Path) -> dict[str, Path]:
    # the actions' and the token revocations' stamps keep the names they had before
    return {
        CLIENTS: instance / "versions" / CLIENTS,
        KEYS: instance / "versions" / KEYS,
        TENANT: instance / "versions" / TENANT,
        ACTIONS: instance / "actions" / "generation",
        TOKEN_REUSE: instance / "revocations.stamp",
    }


class FileVersions(_Watching):
    """Stamp files in the instance folder: every worker of this machine, at its next use.

    They vouch for a cache (:meth:`verified`) only when ``one_machine``: with SQLite, a file on
    this machine, no process elsewhere can change what is cached. With PostgreSQL and no Redis,
    idp cannot know that no other machine shares the database (several instances are declared
    with ``CLUSTER``, which needs Redis, but an undeclared one would go unseen), so the caches
    keep to their short lifetimes, as they did before the versions could vouch."""

    def __init__(self, instance: Path, one_machine: bool = True) -> None:
        self._paths = _paths(instance)
        self._instance = instance
        self._one_machine = one_machine
        self._verified = True
        self._writable, self._writable_at = True, -1e18
        self._outages = 0
        # stamps this process could not move: moved at a later read (at most once a second),
        # else the change would be seen by no other worker until their caches expire
        self._pending: set[str] = set()
        self._retry_at = -1e18
        self._read_only = False  # the last bump met a read-only file system (EROFS)

    def current(self, family: str, fresh: bool = False) -> str:
        if self._pending and time.monotonic() - self._retry_at >= 1.0:
            self._retry_at = time.monotonic()
            for pending in tuple(self._pending):
                self.bump(pending)
        try:
            st = os.stat(self._paths[family])
        except FileNotFoundError:  # nothing was ever bumped: a version like any other
            self._verified = True
            return "0"
        except OSError:  # an unreadable folder: a change could go unseen
            self._verified = False
            self._outages += 1
            return "0"
        self._verified = True
        # a bump replaces the file: a new inode even within the file system's mtime granularity
        return f"{st.st_mtime_ns}:{st.st_ino}"

    def verified(self) -> bool:
        """Also whether the folder takes a bump (once a second): in a read-only instance folder
        a change made here moves no stamp, so the other workers must not trust theirs."""
        now = time.monotonic()
        if now - self._writable_at >= 1.0:
            self._writable_at = now
            folder = self._paths[CLIENTS].parent
            self._writable = os.access(folder if folder.is_dir() else self._instance, os.W_OK)
            if not self._writable:
                self._outages += 1
        return self._verified and self._writable and self._one_machine

    def outages(self) -> int:
        return self._outages

    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def missable(self) -> frozenset[str]:
        """None when no server trusts the stamps anyway: with PostgreSQL they never vouch, and
        on a read-only file system every worker's :meth:`verified` sees the folder unwritable.
        A stamp only this user may not move (EACCES) could be trusted by the servers' user."""
        if not self._one_machine or self._read_only:
            return frozenset()
        return frozenset(self._pending)

    def bump(self, family: str) -> None:
        path = self._paths[family]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(f"{time.time_ns()}\n")
            os.replace(partial, path)
        except OSError as exc:  # a read-only instance folder: the caches' lifetimes still bound it
            if family not in self._pending:  # once, not at each retry (once a second)
                log.warning("could not move the %s version stamp: %s", family, exc)
            self._pending.add(family)
            self._read_only = exc.errno == errno.EROFS
            return
        self._pending.discard(family)
        self._read_only = False


class RedisVersions(_Watching):
    """One Redis key per family, read at most every ``interval`` seconds per worker."""

    def __init__(self, url: str, interval: float, client: Any = None) -> None:
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._redis = client
        self.interval = interval
        self._known: dict[str, str] = dict.fromkeys(FAMILIES, "0")
        self._read_at = -1e18
        self._warned_at = -1e18
        self._verified = False  # until a read reaches Redis
        self._outages = 0
        self._pending: set[str] = set()  # bumps Redis did not take: sent again at a later read
        self._lock = threading.Lock()

    def current(self, family: str, fresh: bool = False) -> str:
        now = time.monotonic()
        if fresh:
            self._read([family], now)
        elif now - self._read_at >= self.interval:
            self._read_at = now  # one reader per interval: concurrent threads use the last read
            # a bump lost with an outage would leave the other instances on the old version;
            # read even if it fails again (a Redis refusing writes only, out of memory)
            all(self._bumped(pending) for pending in tuple(self._pending))
            self._read(list(FAMILIES), now)
        return self._known[family]

    def _read(self, families: list[str], now: float) -> None:
        try:
            values = self._redis.mget([REDIS_PREFIX + f for f in families])
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades the same way
            self._unreachable(exc, now)
            return
        with self._lock:
            for family, value in zip(families, values, strict=True):
                self._known[family] = value.decode() if isinstance(value, bytes) else "0"
            self._verified = True

    def verified(self) -> bool:
        return self._verified

    def outages(self) -> int:
        return self._outages

    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def missable(self) -> frozenset[str]:
        """All of them: a server that reached Redis meanwhile trusts what it read."""
        return frozenset(self._pending)

    def bump(self, family: str) -> None:
        self._bumped(family)

    def _bumped(self, family: str) -> bool:
        try:
            value = secrets.token_hex(8)
            self._redis.set(REDIS_PREFIX + family, value)
        except Exception as exc:  # noqa: BLE001
            self._pending.add(family)
            self._unreachable(exc, time.monotonic())
            return False
        self._pending.discard(family)
        with self._lock:
            self._known[family] = str(value)
        return True

    def _unreachable(self, exc: Exception, now: float) -> None:
        self._verified = False
        self._outages += 1  # not under the lock: a lost increment still leaves it moved
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "Redis unreachable (%s): other instances learn of changes only when their "
                "caches expire",
                type(exc).__name__,
            )


def from_config(config: dict[str, Any], instance: Path) -> Versions:
    """Redis keys when ``REDIS_URL`` is set, else stamp files in ``instance``."""
    if config.get("REDIS_URL"):
        return RedisVersions(
            str(config["REDIS_URL"]), float(config.get("INVALIDATION_CHECK_SECONDS", 0.5))
        )
    url = str(config.get("DATABASE_URL") or "sqlite")
    return FileVersions(instance, one_machine=url.startswith("sqlite"))
