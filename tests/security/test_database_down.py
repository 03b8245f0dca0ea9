"""The database goes away and comes back (SECURITY.md S-FT-04, S-FT-05; §3.4).

Only meaningful on PostgreSQL: idp talks to it through a small TCP proxy run by this test,
which can be stopped (listener closed, every proxied connection cut: a warm pool now holds dead
connections, new ones are refused) and started again on the same port, without restarting idp.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from idp.extensions import db
from tests.conftest import TEST_DB_URL, build_app
from tests.factories import Factory
from tests.helpers import auth_params, login_form_action, pkce

pytestmark = pytest.mark.skipif(
    not TEST_DB_URL.startswith("postgresql"),
    reason="needs PostgreSQL (set IDP_TEST_DATABASE_URL=postgresql+psycopg://...)",
)

LEAKS = ("Traceback", "OperationalError", "psycopg", "sqlalchemy", 'File "', "connection refused")


class TcpProxy:
    """127.0.0.1:<port> → the database server, stoppable and restartable on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _kill(conn)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
                upstream.settimeout(None)
            except OSError:
                _kill(downstream)
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    _kill(downstream)
                    _kill(upstream)
                    return
                self._conns |= {downstream, upstream}
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _kill(src)
            _kill(dst)
            with self._lock:
                self._conns -= {src, dst}


def _kill(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class Deployment:
    def __init__(self, url: str, proxy: TcpProxy, factory: Factory) -> None:
        self.url = url
        self.proxy = proxy
        self.factory = factory


@pytest.fixture
def deployment(tmp_path: Any) -> Iterator[Deployment]:
    real = make_url(TEST_DB_URL)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
    proxy.start()
    proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    probe = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
    port = probe.server_port
    probe.server_close()
    app = build_app(tmp_path, port, DATABASE_URL=proxied)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Deployment(app.config["ISSUER"], proxy, Factory(app))
    finally:
        server.shutdown()
        proxy.stop()
        with app.app_context():
            db.engine.dispose()


def _client_credentials(dep: Deployment, client: Any, audience: str) -> requests.Response:
    return requests.post(
        f"{dep.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "client_credentials", "audience": audience},
        timeout=30,
    )


def _authorize(dep: Deployment, client: Any) -> requests.Response:
    _verifier, challenge = pkce()
    return requests.get(
        f"{dep.url}/authorize",
        params=auth_params(client, challenge),
        allow_redirects=False,
        timeout=30,
    )


def _assert_no_leak(resp: requests.Response) -> None:
    body = resp.text.lower()
    for leak in LEAKS:
        assert leak.lower() not in body, (leak, resp.text[:500])


def _assert_up(dep: Deployment, m2m: Any, audience: str, web: Any) -> None:
    token = _client_credentials(dep, m2m, audience)
    assert token.status_code == 200, token.text
    assert token.json()["access_token"]
    page = _authorize(dep, web)
    assert page.status_code == 200 and login_form_action(page.text), (
        page.status_code,
        page.text[:300],
    )
    ready = requests.get(f"{dep.url}/health/ready", timeout=30)
    assert ready.status_code == 200


def test_database_down_gives_fast_503_then_recovers(deployment):
    """S-FT-05: with the database unreachable, the token endpoint answers 503 JSON with
    ``Retry-After``, /authorize a 503 page, readiness 503, all fast and without internals.
    S-FT-04: once the database is reachable again the next request succeeds, no restart."""
    dep = deployment
    m2m, audience = dep.factory.m2m()
    web = dep.factory.gen_client()
    _assert_up(dep, m2m, audience, web)  # the pool is warm

    dep.proxy.stop()

    started = time.monotonic()
    token = _client_credentials(dep, m2m, audience)
    elapsed = time.monotonic() - started
    assert token.status_code == 503, (token.status_code, token.text[:300])
    assert token.headers["Content-Type"].startswith("application/json")
    assert token.headers.get("Retry-After", "").isdigit(), token.headers
    body = token.json()
    assert body["error"] in ("server_error", "temporarily_unavailable"), body
    assert "access_token" not in body
    _assert_no_leak(token)
    assert elapsed < 5, f"database-down answer took {elapsed:.1f}s"

    page = _authorize(dep, web)
    assert page.status_code == 503, (page.status_code, page.text[:300])
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers.get("Retry-After", "").isdigit()
    assert "Location" not in page.headers
    _assert_no_leak(page)

    ready = requests.get(f"{dep.url}/health/ready", timeout=30)
    assert ready.status_code == 503
    _assert_no_leak(ready)

    dep.proxy.start()  # same port; idp is not restarted
    _assert_up(dep, m2m, audience, web)


def test_first_request_after_database_restart_succeeds(deployment):
    """S-FT-04: every pooled connection dies while no request is running (a PostgreSQL
    restart); the first request afterwards must not fail on a stale connection."""
    dep = deployment
    m2m, audience = dep.factory.m2m()
    web = dep.factory.gen_client()
    # Warm several pooled connections.
    with_pool = [_client_credentials(dep, m2m, audience) for _ in range(3)]
    assert [r.status_code for r in with_pool] == [200, 200, 200]

    dep.proxy.stop()
    dep.proxy.start()

    first = _client_credentials(dep, m2m, audience)
    assert first.status_code == 200, (first.status_code, first.text[:300])
    _assert_up(dep, m2m, audience, web)


def test_token_endpoint_503_is_not_cacheable(deployment):
    """The token endpoint's answers are never cacheable (RFC 6749 §5.1, idp: every token
    endpoint response carries ``Cache-Control: no-store``), the database-down 503 included."""
    dep = deployment
    m2m, audience = dep.factory.m2m()
    dep.proxy.stop()
    token = _client_credentials(dep, m2m, audience)
    assert token.status_code == 503
    assert "no-store" in token.headers.get("Cache-Control", ""), dict(token.headers)
