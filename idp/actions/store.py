"""``api.cache``: per-action key/value entries with a TTL, shared by all workers (the database).

Auth0's semantics: values are strings, a TTL in milliseconds (default 15 minutes, at most
24 hours), at most ``MAX_ENTRIES`` per action; the oldest entry makes room for a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select

from idp.actions.models import ActionCacheEntry
from idp.core import clock

DEFAULT_TTL_MS = 15 * 60 * 1000
MAX_TTL_MS = 24 * 3600 * 1000
MAX_VALUE = 2048
MAX_KEY = 256
MAX_ENTRIES = 20


class CacheStore:
    def __init__(self, transaction: Callable[[], Any]) -> None:
        self.transaction = transaction

    def get(self, action_id: str, key: str) -> str | None:
        with self.transaction() as session:
            row = session.get(ActionCacheEntry, (action_id, key))
            if row is None or row.expires_at <= clock.now():
                return None
            return row.value

    def set(self, action_id: str, key: str, value: str, ttl_ms: int) -> None:
        expires = clock.now() + max(1, ttl_ms // 1000)
        with self.transaction() as session:
            session.execute(
                delete(ActionCacheEntry).where(
                    ActionCacheEntry.action_id == action_id,
                    ActionCacheEntry.expires_at <= clock.now(),
                )
            )
            row = session.get(ActionCacheEntry, (action_id, key))
            if row is None:
                count = session.scalar(
                    select(func.count()).select_from(ActionCacheEntry).where(
                        ActionCacheEntry.action_id == action_id
                    )
                )  # fmt: skip
                if (count or 0) >= MAX_ENTRIES:
                    oldest = session.scalar(
                        select(ActionCacheEntry)
                        .where(ActionCacheEntry.action_id == action_id)
                        .order_by(ActionCacheEntry.expires_at)
                        .limit(1)
                    )
                    if oldest is not None:
                        session.delete(oldest)
                row = ActionCacheEntry(action_id=action_id, key=key, value=value, expires_at=0)
                session.add(row)
            row.value = value
            row.expires_at = expires

    def delete(self, action_id: str, key: str) -> None:
        with self.transaction() as session:
            session.execute(
                delete(ActionCacheEntry).where(
                    ActionCacheEntry.action_id == action_id, ActionCacheEntry.key == key
                )
            )


def serve_cache(store: CacheStore, action_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """Answer one cache RPC from the sandbox; everything in ``message`` is untrusted."""
    op, key = message.get("op"), message.get("key")
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        return {"error": f"cache keys are strings of 1-{MAX_KEY} characters"}
    if op == "get":
        value = store.get(action_id, key)
        return {"result": None if value is None else {"value": value}}
    if op == "delete":
        store.delete(action_id, key)
        return {"result": {"type": "success"}}
    if op == "set":
        value, ttl = message.get("value"), message.get("ttl")
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            return {"error": f"cache values are strings of at most {MAX_VALUE} characters"}
        if ttl is None:
            ttl = DEFAULT_TTL_MS
        if not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_MS:
            return {"error": "cache ttl is in milliseconds, at most 24 hours"}
        store.set(action_id, key, value, ttl)
        return {"result": {"type": "success"}}
    return {"error": "unknown cache operation"}
