"""Counter stores: SQL by default, Redis when ``IDP_REDIS_URL`` is set so that several server
instances share one view of the failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp.core import clock
from idp.protection.models import ProtectionCounter
from idp.stores import STORES


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
