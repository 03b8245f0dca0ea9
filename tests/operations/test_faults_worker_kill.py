"""A worker killed with SIGKILL in the middle of a token request and of a login (issue 17,
faults): nothing half-written, and the server's main process starts another worker.

A real ``idp serve`` with 2 workers on a private PostgreSQL cluster. The test makes the request
stop half-way, deterministically and without a hook in idp: it holds an EXCLUSIVE lock on the
table the request writes last (reads go on, inserts wait), waits until the worker's database
backend is blocked on it with its earlier writes made (its row locks are visible in
``pg_locks``), finds the worker that owns that connection and kills it. The transaction dies
with the worker: the claimed code is redeemable again exactly once, the counted login and its
session are gone, and the same login then succeeds. On gunicorn and on granian."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Connection, create_engine, text

from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce
from tests.operations.private_servers import private_postgres
from tests.operations.served import SERVERS, Served, served

pytestmark = pytest.mark.faults

SCOPE = "openid offline_access"


def _children(pid: int) -> set[int]:
    raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in raw.split()}


def _owner_of_local_port(port: int, pids: set[int]) -> int:
    """The process among ``pids`` holding the TCP socket bound locally to ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds the database connection from port {port}")


def _blocked_backend(admin: Connection, tables: tuple[str, ...]) -> tuple[int, int]:
    """(backend pid, client port) of the backend waiting on a lock, once it has written to
    every one of ``tables`` (so the request is truly half-way)."""
    for _ in range(300):
        row = admin.execute(text(
            "SELECT pid, client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )).first()  # fmt: skip
        if row is not None:
            held = set(admin.execute(text(
                "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = :pid AND l.granted AND l.mode = 'RowExclusiveLock'"
            ), {"pid": row.pid}).scalars())  # fmt: skip
            assert set(tables) <= held, (tables, held)
            return int(row.pid), int(row.client_port)
        time.sleep(0.05)
    raise AssertionError("the request never reached the locked table")


@contextmanager
def _table_locked(url: str, *tables: str) -> Iterator[Connection]:
    engine = create_engine(url)
    try:
        with engine.connect() as locker:
            locker.execute(text(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE"))
            yield locker
            locker.rollback()
    finally:
        engine.dispose()


def _kill_midway(
    server: Served, admin: Connection, tables: tuple[str, ...], send: Any
) -> tuple[int, int, list[Any]]:
    """Start ``send`` in a thread, kill the worker once it waits half-way: the database
    backend's pid, the worker's and what ``send`` got (a connection error)."""
    got: list[Any] = []

    def run() -> None:
        try:
            got.append(send())
        except requests.RequestException as exc:
            got.append(exc)

    workers = _children(server.proc.pid)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    backend, port = _blocked_backend(admin, tables)
    victim = _owner_of_local_port(port, workers)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=60)
    return backend, victim, got


def _backend_gone(admin: Connection, backend: int) -> None:
    for _ in range(300):
        alive = admin.execute(
            text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend}
        ).first()
        if alive is None:
            return
        time.sleep(0.05)
    raise AssertionError("the killed worker's transaction is still open")


def _worker_replaced(server: Served, victim: int) -> None:
    for _ in range(600):
        now = _children(server.proc.pid)
        if len(now) == 2 and victim not in now:
            assert requests.get(f"{server.url}/health/live", timeout=10).status_code == 200
            return
        time.sleep(0.05)
    raise AssertionError(f"{server.kind} did not replace the worker: {_children(server.proc.pid)}")


def _token(server: Served, client: Any, code: str, verifier: str) -> requests.Response:
    return requests.post(f"{server.url}/oauth/token", auth=client.basic, timeout=60,
                         data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": client.redirect_uri,
                               "code_verifier": verifier})  # fmt: skip


@pytest.fixture(params=SERVERS)
def serve_pg(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Served, Connection]]:
    with (
        private_postgres() as pg,
        served(tmp_path / "instance", "--workers", "2", server=request.param,
               DATABASE_URL=pg.url) as server,
    ):  # fmt: skip
        admin_engine = create_engine(pg.url, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as admin:
            yield server, admin
        admin_engine.dispose()


def test_worker_killed_in_the_middle_of_a_token_request(serve_pg):
    server, admin = serve_pg
    client, user = server.factory.gen_client(), server.factory.gen_user()
    verifier, challenge = pkce()
    result = Browser(server.url).authorize(auth_params(client, challenge, scope=SCOPE), user)
    assert result.code, result

    with _table_locked(server.app.config["DATABASE_URL"], "access_tokens", "refresh_tokens"):
        backend, victim, got = _kill_midway(server, admin, ("authorization_codes",),
                                    lambda: _token(server, client, result.code, verifier))  # fmt: skip
    assert isinstance(got[0], requests.ConnectionError), got  # no answer: the worker died
    _backend_gone(admin, backend)

    # the code's claim died with the transaction: not used, nothing issued for it
    used = admin.execute(text("SELECT count(*) FROM authorization_codes WHERE used_at IS NOT NULL"))
    assert used.scalar_one() == 0
    assert admin.execute(text("SELECT count(*) FROM refresh_tokens")).scalar_one() == 0
    assert admin.execute(text("SELECT count(*) FROM access_tokens")).scalar_one() == 0
    _worker_replaced(server, victim)

    first = _token(server, client, result.code, verifier)
    assert first.status_code == 200, first.text
    assert first.json()["refresh_token"]
    again = _token(server, client, result.code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text


def test_worker_killed_in_the_middle_of_a_login(serve_pg):
    server, admin = serve_pg
    client, user = server.factory.gen_client(), server.factory.gen_user()
    browser = Browser(server.url)
    _verifier, challenge = pkce()
    page = browser.http.get(f"{server.url}/authorize", timeout=60,
                            params=auth_params(client, challenge, scope=SCOPE))  # fmt: skip
    action = login_form_action(page.text)
    assert action is not None, page.text[:300]
    form = hidden_inputs(page.text) | {"email": user.email, "password": user.password}

    def login() -> requests.Response:
        return browser.http.post(server.url + action, data=form, allow_redirects=False, timeout=60)

    with _table_locked(server.app.config["DATABASE_URL"], "login_sessions"):
        # the login counted and logged, its session not yet written
        backend, victim, got = _kill_midway(server, admin, ("users", "log_events"), login)
    assert isinstance(got[0], requests.ConnectionError), got
    _backend_gone(admin, backend)

    def count(sql: str) -> int:
        return int(admin.execute(text(sql), {"id": user.user_id}).scalar_one())

    assert count("SELECT logins_count FROM users WHERE id = :id") == 0
    assert count("SELECT count(*) FROM login_sessions WHERE user_id = :id") == 0
    assert count("SELECT count(*) FROM log_events WHERE user_id = :id") == 0
    _worker_replaced(server, victim)

    # the same login, submitted again, completes once: one session, one login counted
    done = login()
    assert done.status_code == 303, (done.status_code, done.text[:300])
    assert count("SELECT logins_count FROM users WHERE id = :id") == 1
    assert count("SELECT count(*) FROM login_sessions WHERE user_id = :id") == 1
