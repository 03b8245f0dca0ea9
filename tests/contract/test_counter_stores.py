"""One contract, every counter store: SQL (SQLite or PostgreSQL), Redis (a real server), and
Redis failing over to SQL while Redis cannot be reached (issue 17, faults)."""

from __future__ import annotations

import secrets
import time

import pytest

from idp.extensions import db
from idp.protection.stores import FallbackCounterStore, RedisCounterStore, SqlCounterStore
from tests.ports import free_port

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_or_skip():
    store = RedisCounterStore(REDIS_URL)
    try:
        store._redis.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    return store


def _nothing_listening() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture(params=["sql", "redis", "redis-down"])
def store(request, op):
    if request.param == "redis":
        yield _redis_or_skip()
        return
    with op.app.app_context():
        sql = SqlCounterStore(lambda: db.session)
        if request.param == "redis-down":
            yield FallbackCounterStore(RedisCounterStore(_nothing_listening()), sql)
        else:
            yield sql
        db.session.commit()


def test_hits_count_within_a_window_and_restart_after_it(store):
    key = f"t:{secrets.token_hex(4)}"
    assert [store.hit(key, 1) for _ in range(3)] == [1, 2, 3]
    time.sleep(2.1)
    assert store.hit(key, 1) == 1


def test_block_reset_and_prefix(store):
    base = f"uip:{secrets.token_hex(4)}:"
    assert store.blocked_for(base + "a") == 0
    store.block(base + "a", 60)
    store.block(base + "b", 60)
    store.hit(base + "c", 60)
    assert 0 < store.blocked_for(base + "a") <= 60
    store.reset(base + "a")
    assert store.blocked_for(base + "a") == 0
    assert store.reset_prefix(base) >= 2
    assert store.blocked_for(base + "b") == 0 and store.hit(base + "c", 60) == 1
