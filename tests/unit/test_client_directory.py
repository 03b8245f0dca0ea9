"""The per-worker client cache (idp.oauth.clients.ClientDirectory): a miss reads the client, its
grants (RFC 6749 §4.4: what a machine client may obtain) and its enabled connections in one
statement, and a full cache drops its least recently used snapshot, not all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from idp.connections.models import Connection, ConnectionClient
from idp.extensions import db, services
from idp.oauth.clients import ClientDirectory
from tests.conftest import build_app
from tests.factories import Factory


class _CountingDirectory(ClientDirectory):
    """Loads from a dict and counts the loads (the database's round trips)."""

    def __init__(
        self, capacity: int = 100, ttl: float = 300.0, versions: Any = None, max_age: float = 0.0
    ) -> None:
        super().__init__(box=Any, ttl=ttl, session=lambda: Any, capacity=capacity,  # type: ignore[arg-type,return-value]
                         versions=versions, max_age=max_age)  # fmt: skip
        self.loads: list[str] = []

    def _load(self, session: Any, client_id: str) -> Any:
        self.loads.append(client_id)
        return f"snapshot of {client_id}"


class _Versions:
    """The clients' version as a worker reads it, and whether that read reached its source."""

    def __init__(self) -> None:
        self.version, self.reached, self.failed = "1", True, 0

    def current(self, family: str, fresh: bool = False) -> str:
        return self.version

    def verified(self) -> bool:
        return self.reached

    def outages(self) -> int:
        return self.failed


def _age(directory: ClientDirectory, client_id: str, seconds: float) -> None:
    """Pretend ``client_id``'s snapshot was loaded ``seconds`` ago."""
    loaded_at, *rest = directory._cache[client_id]
    directory._cache[client_id] = (loaded_at - seconds, *rest)  # type: ignore[assignment]


def test_while_the_versions_are_read_a_snapshot_outlives_the_backstop() -> None:
    """A machine client asking hourly is a hit (its snapshot kept past the 5 s backstop while
    a change would move the version), up to max_age; a moved version reloads at once."""
    versions = _Versions()
    directory = _CountingDirectory(ttl=5.0, versions=versions, max_age=3600.0)
    directory.get("a")
    _age(directory, "a", 3000)
    directory.get("a")
    assert directory.loads == ["a"]  # 3,000 s old: still a hit
    _age(directory, "a", 601)
    directory.get("a")
    assert directory.loads == ["a", "a"]  # past max_age: read again
    versions.version = "2"
    directory.get("a")
    assert directory.loads == ["a", "a", "a"]  # a change: read again however young


def test_when_the_versions_cannot_be_read_the_backstop_applies() -> None:
    versions = _Versions()
    directory = _CountingDirectory(ttl=5.0, versions=versions, max_age=3600.0)
    directory.get("a")
    _age(directory, "a", 2)
    directory.get("a")
    assert directory.loads == ["a"]  # within the backstop: a hit even so
    versions.reached = False  # Redis unreachable: a change elsewhere could go unseen
    _age(directory, "a", 4)
    directory.get("a")
    assert directory.loads == ["a", "a"]


def test_a_snapshot_loaded_before_an_outage_keeps_the_backstop_only() -> None:
    """A change committed while Redis was down moved no version (its bump failed), so once
    Redis answers again the version reads as before: what was loaded before the outage may be
    that change's old state, and is kept for the backstop only, not the hour."""
    versions = _Versions()
    directory = _CountingDirectory(ttl=5.0, versions=versions, max_age=3600.0)
    directory.get("a")
    versions.failed += 1  # a read failed meanwhile (Redis down, then back: same version)
    _age(directory, "a", 60)
    directory.get("a")
    assert directory.loads == ["a", "a"]
    _age(directory, "a", 60)
    directory.get("a")
    assert directory.loads == ["a", "a"]  # loaded after the outage: kept again


def test_a_snapshot_loaded_while_the_versions_cannot_be_read_keeps_the_backstop_only() -> None:
    versions = _Versions()
    versions.reached = False
    directory = _CountingDirectory(ttl=5.0, versions=versions, max_age=3600.0)
    directory.get("a")
    versions.reached = True  # back, with the version of before (a bump may have been lost)
    _age(directory, "a", 60)
    directory.get("a")
    assert directory.loads == ["a", "a"]


def test_a_backstop_of_zero_means_no_cache() -> None:
    directory = _CountingDirectory(ttl=0.0, versions=_Versions(), max_age=3600.0)
    directory.get("a")
    directory.get("a")
    assert directory.loads == ["a", "a"]


def test_a_full_cache_drops_its_least_recently_used_snapshot() -> None:
    directory = _CountingDirectory(capacity=3)
    for client_id in ("a", "b", "c", "a"):  # "a" used again: "b" is now the least recent
        directory.get(client_id)
    directory.get("d")  # makes room by dropping "b", not "a" (loaded first, used last)
    directory.loads.clear()
    for client_id in ("a", "c", "d"):
        directory.get(client_id)
    assert directory.loads == []
    directory.get("b")
    assert directory.loads == ["b"]


def test_a_full_cache_drops_one_snapshot_only() -> None:
    directory = _CountingDirectory(capacity=3)
    for client_id in ("a", "b", "c", "d"):  # "d" makes room by dropping "a"
        assert directory.get(client_id) == f"snapshot of {client_id}"
    directory.loads.clear()
    for client_id in ("b", "c", "d"):
        directory.get(client_id)
    assert directory.loads == []  # still cached: a full cache is not cleared whole
    directory.get("a")
    assert directory.loads == ["a"]  # dropped, so loaded again (and "b", now oldest, dropped)
    directory.get("c")
    directory.get("b")
    assert directory.loads == ["a", "b"]


def test_a_reloaded_snapshot_counts_as_the_newest() -> None:
    directory = _CountingDirectory(capacity=3)
    for client_id in ("a", "b", "c"):
        directory.get(client_id)
    directory._ttl = 0.0  # every snapshot expired: the next look-up reloads
    directory.get("b")  # "b" reloaded: the order is now a, c, b
    directory._ttl = 300.0
    directory.get("d")  # drops "a"
    directory.get("e")  # drops "c", not "b"
    directory.loads.clear()
    for client_id in ("b", "d", "e"):
        directory.get(client_id)
    assert directory.loads == []
    directory.get("c")
    assert directory.loads == ["c"]


def _connection(name: str, position: int) -> Connection:
    return Connection(id=f"con_{name}", name=name, strategy="auth0", options={},
                      position=position, created_at=0, updated_at=0)  # fmt: skip


def test_a_miss_is_one_statement_with_grants_and_connections(tmp_path: Path) -> None:
    """One app for both paths (only a module's first app gets PostgreSQL in the PostgreSQL
    run): a miss before the request has a transaction, then one within a transaction."""
    app = build_app(tmp_path, 5000, CLIENT_CACHE_SECONDS=300.0)  # the tests' default: none
    factory = Factory(app)
    machine, first_api = factory.m2m(["read:things"])
    second_api = factory.gen_api()
    factory.gen_client_grant(machine.client_id, second_api, ["write:things", "read:things"])
    web = factory.gen_client("regular_web")
    with app.app_context():
        db.session.add_all([_connection("last-one", 999), _connection("first-one", -1)])
        db.session.flush()
        for name in ("last-one", "first-one"):
            db.session.add(ConnectionClient(connection_id=f"con_{name}", client_id=web.client_id))
        db.session.commit()
        directory = services().clients
        directory.invalidate()
        sent: list[str] = []

        def listen(*args: Any) -> None:  # SELECTs only: SQLite's BEGIN is a statement too
            if args[2].startswith("SELECT"):
                sent.append(args[2])

        event.listen(db.engine, "before_cursor_execute", listen)
        try:
            info = directory.get(machine.client_id)
            assert len(sent) == 1
            assert directory.get(machine.client_id) is info and len(sent) == 1  # a hit
            page = directory.get(web.client_id)
            assert len(sent) == 2
            assert directory.get("no-such-client") is None
        finally:
            event.remove(db.engine, "before_cursor_execute", listen)
        # PostgreSQL: read in autocommit on a pooled connection, the request's session unused
        # (no BEGIN and COMMIT round trips); SQLite: through the session
        assert db.session.in_transaction() == (db.engine.dialect.name == "sqlite")
        if db.engine.dialect.name == "postgresql":
            # the pooled connection went back out of autocommit: the request's own transaction
            # on it is still one transaction (its writes atomic)
            assert db.engine.pool.checkedin() == 1
            assert db.session.connection().connection.dbapi_connection.autocommit is False
        assert info is not None and page is not None
        assert info.client_grants == {
            first_api: ("read:things",),
            second_api: ("write:things", "read:things"),
        }
        assert info.connections == ("database",) and page.client_grants == {}
        assert page.connections[0] == "first-one" and page.connections[-1] == "last-one"
        assert len(page.connections) == 3  # and the database connection a new app gets
        assert page.redirect_uris == (web.redirect_uri,) and page.app_type == "regular_web"
        assert info.check_client_secret(machine.client_secret or "")

        # within a transaction, its unflushed changes are seen, as session.execute's autoflush
        # made them: the directory flushes first
        db.session.rollback()
        db.session.add(_connection("pending-one", 5))
        db.session.flush()
        db.session.add(ConnectionClient(connection_id="con_pending-one", client_id=web.client_id))
        seen = directory._load(db.session, web.client_id)
        assert seen is not None and "pending-one" in seen.connections
        db.session.rollback()
    with app.app_context():  # the test's session is closed: its connection is in the pool
        db.engine.dispose()
