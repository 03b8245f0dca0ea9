"""Counter stores: SQL by default, Redis when ``IDP_REDIS_URL`` is set so that several server
instances share one view of the failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp.core import clock
from idp.protection.models import ProtectionCounter
from idp.stores import STORES

log = logging.getLogger(__name__)


class CounterStore(Protocol):
    def hit(self, key: str, window: int) -> int:
        """Count one event in a fixed window that starts at the first event; return the count."""

    def blocked_for(self, key: str) -> int:
        """Seconds left of a block on ``key`` (0: not blocked)."""

    def look(self, keys: list[str]) -> dict[str, int]:
        """One read for several keys: those with a count or a block on record, each with the
        seconds left of its block (0: counted, not blocked). Absent: nothing on record."""

    def block(self, key: str, seconds: int) -> None: ...

    def reset(self, key: str) -> None: ...

    def reset_prefix(self, prefix: str) -> int:
        """Drop every counter and block whose key starts with ``prefix``; return how many."""


class SqlCounterStore:
    """Upserts inside the request's transaction (one statement, no lost update under
    concurrency on PostgreSQL; serialised by BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def hit(self, key: str, window: int) -> int:
        session = self._session()
        now = clock.now()
        insert: Any = (
            pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        table = ProtectionCounter.__table__
        stmt = insert(table).values(key=key, count=1, window_ends=now + window, blocked_until=0)
        expired = table.c.window_ends <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((expired, 1), else_=table.c.count + 1),
                "window_ends": case((expired, now + window), else_=table.c.window_ends),
            },
        ).returning(table.c.count)
        return int(session.execute(stmt).scalar_one())

    def blocked_for(self, key: str) -> int:
        until = self._session().scalar(
            select(ProtectionCounter.blocked_until).where(ProtectionCounter.key == key)
        )
        return max((until or 0) - clock.now(), 0)

    def look(self, keys: list[str]) -> dict[str, int]:
        if not keys:
            return {}
        found = STORES.counters.blocked_until(self._session(), keys)
        now = clock.now()
        return {key: max(until - now, 0) for key, until in found.items()}

    def block(self, key: str, seconds: int) -> None:
        session = self._session()
        row = session.get(ProtectionCounter, key)
        until = clock.now() + seconds
        if row is None:
            session.add(ProtectionCounter(key=key, count=0, window_ends=until, blocked_until=until))
        else:
            row.blocked_until = until

    def reset(self, key: str) -> None:
        self._session().execute(delete(ProtectionCounter).where(ProtectionCounter.key == key))

    def reset_prefix(self, prefix: str) -> int:
        result: Any = self._session().execute(
            delete(ProtectionCounter).where(ProtectionCounter.key.startswith(prefix))
        )
        return int(result.rowcount or 0)


class RedisCounterStore:
    """The same contract on Redis (INCR + EXPIRE; blocks are keys with a TTL)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def hit(self, key: str, window: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(f"idp:c:{key}")
        pipe.expire(f"idp:c:{key}", window, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def blocked_for(self, key: str) -> int:
        ttl = int(self._redis.ttl(f"idp:b:{key}"))
        return max(ttl, 0)

    def look(self, keys: list[str]) -> dict[str, int]:
        pipe = self._redis.pipeline()
        for key in keys:
            pipe.ttl(f"idp:b:{key}")
            pipe.exists(f"idp:c:{key}")
        answers = pipe.execute()
        found: dict[str, int] = {}
        for key, ttl, counted in zip(keys, answers[::2], answers[1::2], strict=True):
            if int(ttl) > 0 or int(counted):
                found[key] = max(int(ttl), 0)
        return found

    def block(self, key: str, seconds: int) -> None:
        self._redis.set(f"idp:b:{key}", 1, ex=max(seconds, 1))

    def reset(self, key: str) -> None:
        self._redis.delete(f"idp:c:{key}", f"idp:b:{key}")

    def reset_prefix(self, prefix: str) -> int:
        keys = [
            k
            for pattern in (f"idp:c:{prefix}*", f"idp:b:{prefix}*")
            for k in self._redis.scan_iter(match=pattern, count=500)
        ]
        if keys:
            self._redis.delete(*keys)
        return len(keys)


class FallbackCounterStore:
    """Redis, and the database while Redis cannot be answered (issue 17, faults): attack
    protection fails over rather than failing the login, and never stops counting.

    A Redis error (down, timeout, out of memory) is logged once as a warning and the database
    takes over for this worker; Redis is tried again every ``retry`` seconds and, answering,
    takes back (logged). Blocks and counts recorded in the database during the outage are also
    read, and reset, until their windows end, so an outage does not lift a block it recorded."""

    def __init__(self, primary: CounterStore, fallback: CounterStore, retry: int = 5) -> None:
        import redis

        self._primary, self._fallback, self._retry = primary, fallback, retry
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._down_at: int | None = None  # when Redis last failed (None: Redis in use)
        self._merge_until = 0  # the database's records still count until then

    def _use_fallback(self) -> bool:
        if self._down_at is None:
            return False
        elapsed = clock.now() - self._down_at
        return 0 <= elapsed < self._retry  # a clock jumped backwards retries at once

    def _call(self, name: str, *args: Any) -> Any:
        if not self._use_fallback():
            try:
                answer = getattr(self._primary, name)(*args)
            except self._errors as exc:
                if self._down_at is None:
                    log.warning(
                        "Redis unreachable (%s): attack protection counts in the database",
                        type(exc).__name__,
                    )
                self._down_at = clock.now()
            else:
                if self._down_at is not None:
                    self._down_at = None
                    log.warning("Redis reachable again: attack protection counts in Redis")
                return answer
        return None

    def _merging(self) -> bool:
        return clock.now() < self._merge_until

    def _noted(self, seconds: int) -> None:
        self._merge_until = max(self._merge_until, clock.now() + seconds)

    def hit(self, key: str, window: int) -> int:
        count = self._call("hit", key, window)
        if count is None:
            self._noted(window)
            return self._fallback.hit(key, window)
        return int(count)

    def blocked_for(self, key: str) -> int:
        left = self._call("blocked_for", key)
        if left is None:
            return self._fallback.blocked_for(key)
        if self._merging():
            return max(int(left), self._fallback.blocked_for(key))
        return int(left)

    def look(self, keys: list[str]) -> dict[str, int]:
        found = self._call("look", keys)
        if found is None:
            return self._fallback.look(keys)
        if self._merging():
            for key, left in self._fallback.look(keys).items():
                found[key] = max(found.get(key, 0), left)
        return dict(found)

    def block(self, key: str, seconds: int) -> None:
        if self._call("block", key, seconds) is None and self._use_fallback():
            self._noted(seconds)
            self._fallback.block(key, seconds)

    def reset(self, key: str) -> None:
        self._call("reset", key)
        if self._use_fallback() or self._merging():
            self._fallback.reset(key)

    def reset_prefix(self, prefix: str) -> int:
        """An operator's unblock clears both stores: the database may hold an outage's blocks
        this process never saw."""
        return int(self._call("reset_prefix", prefix) or 0) + self._fallback.reset_prefix(prefix)


def from_config(redis_url: str, session: Callable[[], Session]) -> CounterStore:
    """The database's store, or Redis failing over to it when ``REDIS_URL`` is set."""
    sql = SqlCounterStore(session)
    if not redis_url:
        return sql
    return FallbackCounterStore(RedisCounterStore(redis_url), sql)
