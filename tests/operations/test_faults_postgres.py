"""PostgreSQL restarted under load (issue 17, faults; SECURITY.md S-FT-04, S-FT-05).

idp runs on a private PostgreSQL cluster (initdb and pg_ctl, tests/operations/private_servers.py)
that this test stops and starts for real while clients log in, redeem codes and refresh: every
answer is a success or a 503 with ``Retry-After`` (never a 500), the clients' retries succeed
once the server is back (no restart of idp), no code is redeemed twice nor lost, and no
refresh family is left half-rotated. ``make faults`` runs it (the cluster's start-up takes a few
seconds); tests/security/test_database_down.py has the single-request cases, in CI."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.extensions import db
from idp.oauth.models import RefreshToken
from tests.conftest import build_app, serving
from tests.helpers import Browser, auth_params, pkce
from tests.operations.private_servers import private_postgres

pytestmark = pytest.mark.faults

THREADS = 4
ALLOWED = {200, 302, 303, 503}


@dataclass
class Load:
    base: str
    client: Any
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: list[tuple[int, str, str | None]] = field(default_factory=list)  # status, path, R-A
    failures: list[str] = field(default_factory=list)
    cycles: list[int] = field(default_factory=lambda: [0] * THREADS)
    redeemed: list[tuple[str, str]] = field(default_factory=list)  # (code, verifier)

    def record(self, resp: requests.Response, *_args: Any, **_kw: Any) -> None:
        with self.lock:
            path = requests.utils.urlparse(resp.url).path
            self.answers.append((resp.status_code, path, resp.headers.get("Retry-After")))
            if resp.status_code not in ALLOWED:
                self.failures.append(f"{resp.status_code} {path}: {resp.text[:300]}")

    def total_cycles(self) -> int:
        with self.lock:
            return min(self.cycles)


def _until_not_503(deadline: float, call: Any, *args: Any, **kwargs: Any) -> Any:
    """A client that honours 503 + Retry-After: the same request again, shortly."""
    while True:
        resp = call(*args, **kwargs)
        if getattr(resp, "status", getattr(resp, "status_code", None)) != 503:
            return resp
        if time.monotonic() > deadline:
            raise AssertionError("still 503 long after the database came back")
        time.sleep(0.2)


def _client(load: Load, n: int, user: Any) -> None:
    browser = Browser(load.base)
    browser.http.hooks["response"].append(load.record)
    http = requests.Session()
    http.hooks["response"].append(load.record)
    scope, url = "openid offline_access", f"{load.base}/oauth/token"
    first = True
    while not load.stop.is_set():
        deadline = time.monotonic() + 90
        verifier, challenge = pkce()
        params = auth_params(load.client, challenge, scope=scope)
        result = _until_not_503(deadline, browser.authorize, params, user if first else None)
        if not result.code:
            load.failures.append(f"thread {n}: no code: {result.status} {result.page[:300]}")
            return
        first = False
        form = {"grant_type": "authorization_code", "code": result.code,
                "redirect_uri": load.client.redirect_uri, "code_verifier": verifier}  # fmt: skip
        token = _until_not_503(deadline, http.post, url, data=form, auth=load.client.basic)
        if token.status_code != 200:  # a code answered 503 must still be redeemable
            load.failures.append(f"thread {n}: code lost: {token.status_code} {token.text}")
            return
        with load.lock:
            load.redeemed.append((result.code, verifier))
        refresh = token.json()["refresh_token"]
        for _ in range(2):
            form = {"grant_type": "refresh_token", "refresh_token": refresh}
            rotated = _until_not_503(deadline, http.post, url, data=form, auth=load.client.basic)
            if rotated.status_code != 200:  # a rotation answered 503 must not have happened
                load.failures.append(f"thread {n}: refresh: {rotated.status_code} {rotated.text}")
                return
            refresh = rotated.json()["refresh_token"]
        with load.lock:
            load.cycles[n] += 1


def _wait_cycles(load: Load, target: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while load.total_cycles() < target:
        assert not load.failures, load.failures
        assert time.monotonic() < deadline, f"the clients stalled: {load.cycles}"
        time.sleep(0.2)


def test_postgres_restart_under_load(tmp_path):
    with (
        private_postgres() as pg,
        serving(lambda port: build_app(tmp_path, port, DATABASE_URL=pg.url)) as live,
    ):
        load = Load(live.url, live.factory.gen_client())
        users = [live.factory.gen_user() for _ in range(THREADS)]
        threads = [
            threading.Thread(target=_client, args=(load, n, users[n]), daemon=True)
            for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        _wait_cycles(load, 1)

        pg.stop("fast")  # in-flight transactions are cut; new connections refused
        probe = requests.post(f"{live.url}/oauth/token", auth=load.client.basic,
                              data={"grant_type": "refresh_token", "refresh_token": "x"},
                              timeout=30)  # fmt: skip
        assert probe.status_code == 503, probe.text
        time.sleep(1.0)  # the clients keep asking meanwhile
        pg.start()
        _wait_cycles(load, 2)

        pg.stop("fast")  # a second, shorter outage: a restart
        pg.start()
        _wait_cycles(load, load.total_cycles() + 1)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=120)

        assert not load.failures, load.failures
        unavailable = [a for a in load.answers if a[0] == 503]
        assert unavailable, "the outage was not seen"
        assert all((ra or "").isdigit() for _, _, ra in unavailable), unavailable
        assert not [a for a in load.answers if a[0] >= 500 and a[0] != 503]

        with live.app.app_context():  # no family half-rotated
            rows = db.session.scalars(select(RefreshToken)).all()
            by_id = {row.id: row for row in rows}
            children: dict[str, int] = {}
            for row in rows:
                if row.parent_id:
                    children[row.parent_id] = children.get(row.parent_id, 0) + 1
                    assert by_id[row.parent_id].status == "rotated", "child of an active token"
                assert row.status in ("active", "rotated"), row.status  # nothing revoked
            rotated = [row.id for row in rows if row.status == "rotated"]
            assert all(children.get(rid, 0) >= 1 for rid in rotated), "rotated without a child"

        for code, verifier in load.redeemed:  # each code was redeemed once, and only once
            again = requests.post(f"{live.url}/oauth/token", auth=load.client.basic,
                                  data={"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": load.client.redirect_uri,
                                        "code_verifier": verifier}, timeout=30)  # fmt: skip
            assert again.status_code == 400, again.text
            assert again.json()["error"] == "invalid_grant"
