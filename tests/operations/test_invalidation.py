"""The caches' version stamps (``idp.core.versions``): stamp files on one machine, Redis
counters across instances, a Redis that is down, and the command line telling the servers.

Redis tests use db 12 (``IDP_TEST_REDIS_MULTI``) and skip without it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idp.cli import main
from idp.core.versions import (
    ACTIONS,
    CLIENTS,
    KEYS,
    TOKEN_REUSE,
    FileVersions,
    RedisVersions,
    from_config,
)

REDIS_URL = os.environ.get("IDP_TEST_REDIS_MULTI", "redis://127.0.0.1:6379/12")


@pytest.fixture
def redis() -> Any:
    import redis as redis_lib

    client = redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis_lib.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    client.flushdb()
    yield client
    client.flushdb()


def test_file_stamps_move_on_every_bump(tmp_path: Path) -> None:
    mine, other_worker = FileVersions(tmp_path), FileVersions(tmp_path)
    seen = {other_worker.current(CLIENTS)}
    for _ in range(3):  # quicker than the file system's mtime granularity: the inode differs
        mine.bump(CLIENTS)
        now = other_worker.current(CLIENTS)
        assert now not in seen
        seen.add(now)
    assert other_worker.current(KEYS) == "0"  # families are separate
    mine.bump(ACTIONS)  # the actions' stamp keeps its path from before
    assert (tmp_path / "actions" / "generation").exists()


def test_redis_counters_reach_another_instance_within_the_interval(redis: Any) -> None:
    a = RedisVersions(REDIS_URL, interval=0.2)
    b = RedisVersions(REDIS_URL, interval=0.2)
    before = b.current(CLIENTS)
    a.bump(CLIENTS)
    assert a.current(CLIENTS) != before  # the bumping worker at once
    assert b.current(TOKEN_REUSE, fresh=True) == "0"
    assert b.current(CLIENTS, fresh=True) != before  # fresh: asked now
    a.bump(KEYS)
    start = time.monotonic()
    while b.current(KEYS) == "0":  # within the interval (polled, not timed)
        assert time.monotonic() - start < 10
        time.sleep(0.01)
    assert isinstance(from_config({"REDIS_URL": REDIS_URL}, Path("/nonexistent")), RedisVersions)


def test_redis_down_degrades_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    down = RedisVersions("redis://127.0.0.1:1/0", interval=0.0)
    with caplog.at_level(logging.WARNING, logger="idp.core.versions"):
        down.bump(CLIENTS)  # no exception: the caches fall back on their lifetimes
        assert down.current(CLIENTS) == "0"
    assert "Redis unreachable" in caplog.text
    assert not down.verified()  # so the client cache keeps a snapshot its backstop only


class _FlakyRedis:
    def __init__(self) -> None:
        self.up = True

    def mget(self, keys: list[str]) -> list[bytes]:
        if not self.up:
            raise ConnectionError("down")
        return [b"v1"] * len(keys)


def test_redis_versions_say_whether_their_last_read_reached_redis() -> None:
    redis = _FlakyRedis()
    versions = RedisVersions("redis://unused", interval=0.0, client=redis)
    assert not versions.verified()  # nothing read yet
    assert versions.current(CLIENTS) == "v1" and versions.verified()
    redis.up = False
    assert versions.outages() == 0
    assert versions.current(CLIENTS) == "v1"  # the last value kept...
    assert not versions.verified()  # ...but not vouched for
    redis.up = True
    versions.current(CLIENTS)
    assert versions.verified()
    assert versions.outages() == 1  # a bump made meanwhile may be lost


def test_file_versions_say_whether_their_folder_could_be_read(tmp_path: Path) -> None:
    assert FileVersions(tmp_path).current(CLIENTS) == "0"  # nothing bumped yet: a version
    readable = FileVersions(tmp_path)
    readable.current(CLIENTS)
    assert readable.verified()
    (tmp_path / "file").write_text("")
    broken = FileVersions(tmp_path / "file")  # its stamps' folder is a file: stat fails
    assert broken.current(CLIENTS) == "0" and not broken.verified()
    assert readable.outages() == 0 and broken.outages() >= 1


def test_the_command_line_tells_the_servers_after_its_commit(tmp_path: Path, redis: Any) -> None:
    runner = CliRunner()
    instance = str(tmp_path / "inst")

    def idp(*args: str) -> Any:
        result = runner.invoke(main, ["--instance", instance, "--json", *args])
        assert result.exit_code == 0, result.output
        return result

    idp("init")
    with (tmp_path / "inst" / "config.toml").open("a") as config:
        config.write(f'redis_url = "{REDIS_URL}"\n')
    assert redis.get("idp:v:keys") is None
    idp("keys", "rotate", "--now")
    keys = redis.get("idp:v:keys")
    assert keys is not None and redis.get("idp:v:token_reuse") is not None
    assert redis.get("idp:v:clients") is None  # only what the command changed
    idp("clients", "create", "--name", "cli app", "--type", "m2m")
    assert redis.get("idp:v:clients") is not None and redis.get("idp:v:keys") == keys
    idp("keys", "rotate", "--now")
    assert redis.get("idp:v:keys") not in (None, keys)


def test_two_apps_on_one_sqlite_file_learn_of_changes_through_redis(
    tmp_path: Path, redis: Any
) -> None:
    """Two instances in this process (separate app objects, caches and instance folders, so no
    stamp file is shared), one SQLite file: what the API changes at A reaches B's caches,
    which would otherwise keep it 300 s. The process tests of test_multi_instance.py do the
    same on PostgreSQL; this one runs with the default suite."""
    from types import SimpleNamespace

    from idp import create_app
    from idp.core import migrate
    from idp.extensions import db, services
    from idp.keys.service import create_key
    from idp.management.service import management_audience
    from tests.conftest import FAST_SETTINGS
    from tests.factories import Factory
    from tests.management.conftest import grant

    issuer = "http://127.0.0.1:5999"
    config = dict(
        FAST_SETTINGS, ISSUER=issuer, SECRET_KEY="k" * 48, REDIS_URL=REDIS_URL,
        DATABASE_URL=f"sqlite:///{tmp_path / 'shared.sqlite3'}", INVALIDATION_CHECK_SECONDS=0.05,
        CLIENT_CACHE_SECONDS=300.0, TENANT_SETTINGS_CACHE_SECONDS=300.0,
    )  # fmt: skip
    a = create_app(config, instance_path=tmp_path / "a")
    b = create_app(config, instance_path=tmp_path / "b")
    try:
        with a.app_context():
            migrate.upgrade(db.engine)
            create_key(db.session, services().box, "RS256")
            db.session.commit()
        op = SimpleNamespace(app=a, url=issuer, factory=Factory(a))
        admin = grant(op, ["update:clients", "update:branding"])
        client, audience = op.factory.m2m()
        at_a, at_b = a.test_client(), b.test_client()

        def cc(http: Any, secret: str | None = None, aud: str = audience) -> Any:
            return http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "audience": aud},
                auth=(client.client_id, secret or client.client_secret),
            )

        assert cc(at_b).status_code == 200  # B caches the client
        assert b"#2457c5" in at_b.get("/branding.css").data  # and the tenant settings
        token = at_a.post(
            "/oauth/token", auth=admin.basic,
            data={"grant_type": "client_credentials", "audience": management_audience(issuer)},
        ).get_json()["access_token"]  # fmt: skip
        bearer = {"Authorization": f"Bearer {token}"}
        rotated = at_a.post(f"/api/v2/clients/{client.client_id}/rotate-secret", headers=bearer)
        assert rotated.status_code == 200, rotated.get_data(as_text=True)
        patched = at_a.patch("/api/v2/branding", headers=bearer,
                             json={"colors": {"primary": "#123456"}})  # fmt: skip
        assert patched.status_code == 200, patched.get_data(as_text=True)

        start = time.monotonic()
        while cc(at_b).status_code != 401 or b"#123456" not in at_b.get("/branding.css").data:
            assert time.monotonic() - start < 20, "B never saw A's changes"
            time.sleep(0.02)
        assert cc(at_b, rotated.get_json()["client_secret"]).status_code == 200
    finally:
        for app in (a, b):
            with app.app_context():
                services().actions.close()
                db.engine.dispose()


def test_an_action_built_by_another_instance_fails_closed_saying_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version's dependencies live in the instance folder of the instance that built it: where
    the folder is not shared, the chain fails closed and the log says what to share."""
    from idp.actions.models import ActionVersion
    from idp.extensions import db, services
    from tests.conftest import build_app
    from tests.factories import Factory

    app = build_app(tmp_path, 5998)
    try:
        factory = Factory(app)
        client, audience = factory.m2m()
        action_id = factory.gen_action(
            "elsewhere", "credentials-exchange",
            "def on_execute_credentials_exchange(event, api):\n    pass\n",
        )  # fmt: skip
        with app.app_context():
            version = db.session.query(ActionVersion).filter_by(action_id=action_id).one()
            version.deps_dir = "ver_built_at_another_instance"
            db.session.commit()
            services().actions.bump()
        with caplog.at_level(logging.ERROR, logger="idp.actions.engine"):
            resp = app.test_client().post(
                "/oauth/token", auth=client.basic,
                data={"grant_type": "client_credentials", "audience": audience},
            )  # fmt: skip
        assert "dependencies are not in" in caplog.text and "share" in caplog.text
        with app.app_context():
            unconfined = services().actions.runner.level == "insecure-dev"
        if not unconfined:  # the sandbox binds the folder: it cannot start without it
            assert resp.status_code == 403 and resp.get_json()["error"] == "access_denied"
    finally:
        with app.app_context():
            services().actions.close()
            db.engine.dispose()


class _MemoryRedis:
    """MGET and SET of one in-memory Redis, which can be down."""

    def __init__(self) -> None:
        self.up, self.data, self.refuses_writes = True, {}, False

    def mget(self, keys: list[str]) -> list[bytes | None]:
        if not self.up:
            raise ConnectionError("down")
        return [self.data.get(k) for k in keys]

    def set(self, key: str, value: str) -> None:
        if not self.up or self.refuses_writes:
            raise ConnectionError("down")
        self.data[key] = value.encode()


def test_a_bump_that_did_not_reach_redis_is_sent_again_once_it_answers() -> None:
    """A change committed while this worker could not reach Redis: the other instances read
    Redis and keep their clients for up to an hour, so the bump must not be lost with the
    outage (it is sent again at this worker's next read that reaches Redis)."""
    redis = _MemoryRedis()
    writer = RedisVersions("redis://unused", interval=0.0, client=redis)
    reader = RedisVersions("redis://unused", interval=0.0, client=redis)
    before = reader.current(CLIENTS)
    redis.up = False
    writer.bump(CLIENTS)  # after the commit; Redis does not answer
    redis.up = True
    assert reader.current(CLIENTS) == before  # nobody could know yet...
    writer.current(KEYS)  # ...until the writer's next read
    assert reader.current(CLIENTS) != before
    assert redis.data.keys() == {"idp:v:clients"}  # only the family that was bumped
    redis.refuses_writes = True  # out of memory: a bump fails again, the versions still read
    writer.bump(CLIENTS)
    redis.data["idp:v:keys"] = b"moved elsewhere"
    assert writer.current(KEYS) == "moved elsewhere" and writer.verified()


def test_a_stamp_that_could_not_be_moved_is_moved_at_the_next_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer, reader = FileVersions(tmp_path), FileVersions(tmp_path)
    before = reader.current(CLIENTS)
    (tmp_path / "versions").write_text("")  # the stamps' folder cannot be made: no bump
    with caplog.at_level(logging.WARNING, logger="idp.core.versions"):
        writer.bump(CLIENTS)
        writer._retry_at = -1e18
        writer.current(KEYS)  # retried, failed again: not logged again (a read-only folder)
    assert caplog.text.count("could not move the clients version stamp") == 1
    (tmp_path / "versions").unlink()
    writer._retry_at = -1e18  # its once-a-second retry is due
    writer.current(KEYS)
    assert reader.current(CLIENTS) != before


def test_stamp_files_vouch_for_a_cache_only_on_sqlite(tmp_path: Path) -> None:
    """PostgreSQL without Redis may be shared by another machine that nobody declared
    (CLUSTER): its changes move no stamp here, so the client cache keeps its 5 s backstop."""
    sqlite = from_config({"DATABASE_URL": f"sqlite:///{tmp_path}/idp.sqlite3"}, tmp_path)
    shared = from_config({"DATABASE_URL": "postgresql+psycopg://db.example/idp"}, tmp_path)
    for versions in (sqlite, shared):
        versions.current(CLIENTS)
    assert sqlite.verified() and not shared.verified()
