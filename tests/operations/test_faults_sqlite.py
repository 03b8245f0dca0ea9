"""SQLite's disk full, and a read-only instance folder (issue 17, faults): clear answers (a 503
with ``Retry-After``: a page for people, the OAuth error for clients, never a 500), nothing
half-written (a code is redeemed exactly once over the outage), and ``PRAGMA integrity_check``
finds the database intact afterwards.

As root, the instance folder is a small tmpfs of its own, filled up with a file and remounted
read-only (the real errors: ENOSPC, EROFS). Otherwise (no mount allowed) the disk is "full"
through SQLite's ``max_page_count`` and the folder read-only through its mode."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import event

from idp import create_app
from idp.core.versions import CLIENTS, FileVersions
from idp.extensions import db
from tests.conftest import FAST_SETTINGS, build_app, serving
from tests.helpers import Browser, auth_params, pkce, redeem

SCOPE = "openid offline_access"


class Disk:
    """The instance folder on a file system the test can fill and make read-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounted = False
        self._filler = root / "filler"

    def __enter__(self) -> Disk:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                                   str(self.root)], capture_output=True, check=False)  # fmt: skip
            self.mounted = done.returncode == 0
        (self.root / "instance").mkdir()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)
        else:
            self.writable()

    @property
    def instance(self) -> Path:
        return self.root / "instance"

    @property
    def database(self) -> Path:
        return self.instance / "idp.sqlite3"

    def fill(self, app: Flask) -> None:
        """No space left: every write that needs a page more fails (SQLITE_FULL)."""
        with closing(sqlite3.connect(self.database)) as con:  # the next write must grow the WAL
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if self.mounted:
            with open(self._filler, "wb", buffering=0) as out:
                for size in (1 << 16, 512, 1):
                    try:
                        while True:
                            out.write(b"\0" * size)
                    except OSError:
                        continue
            return
        with closing(sqlite3.connect(self.database)) as con:
            pages = con.execute("PRAGMA page_count").fetchone()[0]
        with app.app_context():
            engine = db.engine
            event.listen(engine, "connect", _limit_pages(pages))
            engine.dispose()  # new connections, with the limit

    def free(self, app: Flask) -> None:
        if self.mounted:
            self._filler.unlink()
            return
        with app.app_context():
            engine = db.engine
            event.listen(engine, "connect", _limit_pages(1 << 30))
            engine.dispose()

    def read_only(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True)
            return
        for path in (self.instance, *self.instance.iterdir()):
            path.chmod(0o555 if path.is_dir() else 0o444)

    def writable(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(self.root)], check=True)
            return
        for path in (self.instance, *self.instance.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)


def _limit_pages(pages: int) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {int(pages)}")

    return on_connect


@contextmanager
def _disk(tmp_path: Path, read_only: bool = False) -> Iterator[Disk]:
    with Disk(tmp_path / "disk") as disk:
        if read_only and not disk.mounted and os.geteuid() == 0:
            pytest.skip("root without mount: a read-only mode does not stop root")
        yield disk


def _assert_unavailable(resp: requests.Response, page: bool) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:300])
    assert resp.headers.get("Retry-After", "").isdigit(), resp.headers
    kind = "text/html" if page else "application/json"
    assert resp.headers["Content-Type"].startswith(kind), resp.headers
    assert "Traceback" not in resp.text and "sqlite" not in resp.text.lower()


def _integrity(database: Path) -> None:
    with closing(sqlite3.connect(database)) as con:  # `with` on a connection does not close it
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _token(base: str, client: Any, **form: str) -> requests.Response:
    return requests.post(f"{base}/oauth/token", auth=client.basic, data=form, timeout=60)


def test_disk_full_gives_503_and_corrupts_nothing(tmp_path):
    with _disk(tmp_path) as disk:
        url = f"sqlite:///{disk.database}"
        with serving(lambda port: build_app(disk.instance, port, DATABASE_URL=url)) as live:
            base, client, user = live.url, live.factory.gen_client(), live.factory.gen_user()
            browser = Browser(base)
            verifier, challenge = pkce()
            first = browser.authorize(auth_params(client, challenge, scope=SCOPE), user)
            tokens = redeem(base, client, first.code, verifier).json()
            verifier, challenge = pkce()
            pending = browser.authorize(auth_params(client, challenge, scope=SCOPE))
            assert pending.code and tokens["refresh_token"]

            disk.fill(live.app)
            answers = []
            for _ in range(50):  # a new visitor each time: an interaction row more
                page = requests.get(f"{base}/authorize", timeout=60,
                                    params=auth_params(client, pkce()[1]))  # fmt: skip
                answers.append(page.status_code)
                if page.status_code != 200:
                    break
            assert answers[-1] == 503, answers
            _assert_unavailable(page, page=True)
            during = redeem(base, client, pending.code, verifier)
            refreshed = _token(base, client, grant_type="refresh_token",
                               refresh_token=tokens["refresh_token"])  # fmt: skip
            for resp in (during, refreshed):
                assert resp.status_code in (200, 503), resp.text
                if resp.status_code == 503:
                    _assert_unavailable(resp, page=False)
            if disk.mounted:  # a real full disk: no write goes through
                assert during.status_code == refreshed.status_code == 503

            disk.free(live.app)
            after = redeem(base, client, pending.code, verifier)
            # exactly once over the outage: now if it was refused then, else never again
            assert after.status_code == (200 if during.status_code == 503 else 400), after.text
            assert redeem(base, client, pending.code, verifier).status_code == 400
            if refreshed.status_code == 503:  # the rotation did not half-happen
                again = _token(base, client, grant_type="refresh_token",
                               refresh_token=tokens["refresh_token"])  # fmt: skip
                assert again.status_code == 200, again.text
            verifier, challenge = pkce()
            fresh = Browser(base).authorize(auth_params(client, challenge), user)
            assert fresh.code and redeem(base, client, fresh.code, verifier).status_code == 200
        _integrity(disk.database)


def test_read_only_instance_folder_gives_503_and_corrupts_nothing(tmp_path):
    with _disk(tmp_path, read_only=True) as disk:
        url = f"sqlite:///{disk.database}"
        with serving(lambda port: build_app(disk.instance, port, DATABASE_URL=url)) as live:
            client, user = live.factory.gen_client(), live.factory.gen_user()
            verifier, challenge = pkce()
            code = Browser(live.url).authorize(auth_params(client, challenge), user).code
            assert code

        def restart(port: int) -> Flask:
            config = dict(FAST_SETTINGS, ISSUER=f"http://127.0.0.1:{port}", DATABASE_URL=url)
            return create_app(config, instance_path=disk.instance)

        disk.read_only()  # a fresh server on it: its caches are empty, every read fails
        with serving(restart) as live:
            base = live.url
            page = requests.get(f"{base}/authorize", timeout=60,
                                params=auth_params(client, pkce()[1]))  # fmt: skip
            _assert_unavailable(page, page=True)  # the error page renders without its settings
            _assert_unavailable(redeem(base, client, code, verifier), page=False)
            _assert_unavailable(requests.get(f"{base}/health/ready", timeout=60), page=False)
            api = requests.get(f"{base}/api/v2/users", timeout=60,
                               headers={"Authorization": "Bearer x.y.z"})  # fmt: skip
            assert api.status_code in (401, 503), api.text
            if api.status_code == 503:  # the management API's own problem shape
                _assert_unavailable(api, page=False)
                assert api.json()["statusCode"] == 503

        disk.writable()
        with serving(restart) as live:
            assert redeem(live.url, client, code, verifier).status_code == 200
            assert redeem(live.url, client, code, verifier).status_code == 400
        _integrity(disk.database)


def test_a_read_only_instance_folder_leaves_the_client_cache_on_its_backstop(
    tmp_path: Path,
) -> None:
    """A change made here moves no stamp in a read-only folder, so no worker may keep a client
    past CLIENT_CACHE_SECONDS on the strength of a stamp that cannot move (idp.core.versions)."""
    with _disk(tmp_path, read_only=True) as disk:
        FileVersions(disk.instance).bump(CLIENTS)
        worker = FileVersions(disk.instance)
        worker.current(CLIENTS)
        assert worker.verified()
        disk.read_only()
        worker._writable_at = -1e18  # its once-a-second check is due
        worker.current(CLIENTS)
        assert not worker.verified()
        disk.writable()
        worker._writable_at = -1e18
        assert worker.verified()
        assert worker.outages() == 1  # what was loaded before is trusted for the backstop only
