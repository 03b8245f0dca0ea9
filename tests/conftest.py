"""Fixtures: a live idp server (fresh instance, fresh schema) on a free loopback port.

The database is SQLite in a temporary instance unless ``IDP_TEST_DATABASE_URL`` names another
(CI runs the suite a second time on PostgreSQL). Tests talk to the server over real HTTP.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.core import migrate
from idp.extensions import db, services
from idp.keys.service import create_key
from tests.factories import Factory
from tests.ports import free_port


def _worker_database(url: str) -> str:
    """Under pytest-xdist, each worker its own PostgreSQL database (``<name>_gw0``, ...).

    Test modules reset the schema of the database they use; two workers on one database
    would drop each other's tables. The environment variable is rewritten too, for the
    servers that tests start as subprocesses.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker or not url.startswith("postgresql"):
        return url
    base, _, name = url.rpartition("/")
    own = f"{name}_{worker}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own}
        ).first():
            conn.execute(text(f'CREATE DATABASE "{own}"'))
    engine.dispose()
    os.environ["IDP_TEST_DATABASE_URL"] = f"{base}/{own}"
    return f"{base}/{own}"


TEST_DB_URL = _worker_database(os.environ.get("IDP_TEST_DATABASE_URL", ""))

FAST_SETTINGS: dict[str, Any] = {
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_KIB": 1024,
    "CLIENT_CACHE_SECONDS": 0.0,
    "KEY_CACHE_SECONDS": 0.0,
    # A rotation signs with the new key at once, as tests that rotate expect; the staged
    # rotation's own tests (tests/conformance/test_key_rotation.py) set an overlap.
    "KEY_PUBLISH_BEFORE_SIGNING_SECONDS": 0,
}

pytest_plugins = ["tests.actions.gated"]  # the gated pip dependency's fixtures


def reset_database(url: str) -> None:
    """Drop everything in the test database so each server starts from an empty schema."""
    if not url.startswith("postgresql"):
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# Each test module gets at most one server on the shared PostgreSQL database: building a second
# one would reset the schema under the first (and its keys, encrypted under another secret).
_POSTGRES = {"taken": False}


@pytest.fixture(scope="module", autouse=True)
def _one_postgres_server_per_module() -> Iterator[None]:
    _POSTGRES["taken"] = False
    yield


def build_app(tmp: Path, port: int, **overrides: Any) -> Flask:
    (tmp / "secret.key").write_text(secrets.token_urlsafe(48))
    config = dict(FAST_SETTINGS)
    config["ISSUER"] = f"http://127.0.0.1:{port}"
    if TEST_DB_URL and "DATABASE_URL" not in overrides:
        if _POSTGRES["taken"]:
            config["DATABASE_URL"] = f"sqlite:///{tmp / 'idp.sqlite3'}"
        else:
            config["DATABASE_URL"] = TEST_DB_URL
            _POSTGRES["taken"] = True
    config.update(overrides)
    reset_database(config.get("DATABASE_URL", ""))
    app = create_app(config, instance_path=tmp)
    with app.app_context():
        migrate.upgrade(db.engine)
        create_key(db.session, services().box, "RS256")
        db.session.commit()
        # close the set-up's pooled connection: a test that never uses the app again would
        # leave it to the garbage collector, whose ResourceWarning then fails whichever test
        # runs at that moment (psycopg warns on an open connection deleted)
        db.engine.dispose()
    return app


class LiveServer:
    def __init__(self, app: Flask, server: BaseWSGIServer) -> None:
        self.app = app
        self.server = server
        self.url = app.config["ISSUER"]
        self.factory = Factory(app)


def _files_read_whole(app: Flask) -> Callable[..., Any]:
    """The app, with every response read and closed before Werkzeug's development server sends
    it. That server closes a response only after draining the request socket, which raises
    when a browser has dropped the connection (Chromium cancels a stylesheet when the page
    moves on): a file response (``send_file``'s ``FileWrapper``), or a 304 revalidating one
    (its file inside a ``ClosingIterator`` with no body), was left to the garbage collector, a
    ResourceWarning, which this suite makes an error. idp streams no response, so all can be."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return wsgi


def _free_server(app_builder: Any) -> tuple[Flask, BaseWSGIServer]:
    port = free_port()  # the app's issuer names it: known before the app is built
    app = app_builder(port)
    server = make_server("127.0.0.1", port, _files_read_whole(app), threaded=True)
    return app, server


@contextmanager
def serving(app_builder: Callable[[int], Flask]) -> Iterator[LiveServer]:
    """Serve ``app_builder(port)`` on a free loopback port in a thread; afterwards stop it, its
    sandboxes and its database pool."""
    app, server = _free_server(app_builder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(app, server)
    finally:
        server.shutdown()
        server.server_close()
        with app.app_context():
            services().actions.close()
            db.engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One fresh server per test module (a server per test would dominate the run time)."""
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port)) as server:
        yield server


@pytest.fixture
def op(live: LiveServer) -> LiveServer:
    return live


@pytest.fixture
def clock() -> Iterator[Any]:
    """Move the server's clock (it runs in this process): ``clock.advance(61)``."""
    from idp.core import clock as server_clock

    yield server_clock
    server_clock.reset()
