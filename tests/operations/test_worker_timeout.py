"""``idp serve --timeout``: a worker busy with one request for longer is ended and replaced,
on both servers (gunicorn's arbiter does it for its sync workers; for granian's workers
``idp.ops.watchdog`` does). The request here is stuck on the SQLite database's write lock,
which the test holds (the server's busy timeout, 10 s, would answer much later)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_DB_URL
from tests.operations.served import Served, served

pytestmark = pytest.mark.skipif(
    bool(TEST_DB_URL), reason="holds SQLite's write lock (the watchdog is the database's alike)"
)


def _workers(server: Served) -> set[int]:
    raw = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return {int(pid) for pid in raw.split()}


def _database(server: Served) -> str:
    url = str(server.app.config["DATABASE_URL"])
    assert url.startswith("sqlite:///"), url
    return url.removeprefix("sqlite:///")


def _stuck(url: str, outcomes: list[str]) -> None:
    try:
        requests.get(f"{url}/health/ready", timeout=30)
        outcomes.append("answered")
    except requests.ConnectionError:  # no answer: the worker is gone
        outcomes.append("worker gone")


@pytest.mark.parametrize(
    ("kind", "threads"),
    [("gunicorn", 1), ("granian", 1), ("granian", 2)],  # granian's default: 2 (both stuck end
)  # the worker; with one stuck it still serves: the last test)
def test_a_worker_stuck_past_the_timeout_is_replaced(
    tmp_path: Path, kind: str, threads: int
) -> None:
    with served(tmp_path / "instance", "--workers", "1", "--timeout", "2",
                "--threads", str(threads), server=kind) as server:  # fmt: skip
        assert requests.get(f"{server.url}/health/ready", timeout=10).status_code == 200
        (first,) = _workers(server)
        lock = sqlite3.connect(_database(server), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the server's next transaction waits for it
        try:
            began = time.monotonic()
            outcomes: list[str] = []
            stuck = [threading.Thread(target=_stuck, args=(server.url, outcomes))
                     for _ in range(threads)]  # fmt: skip
            for thread in stuck:
                thread.start()
            for thread in stuck:
                thread.join(timeout=40)
            assert outcomes == ["worker gone"] * threads
            assert time.monotonic() - began < 8  # the timeout ended it, not the busy timeout
        finally:
            lock.rollback()
            lock.close()
        for _ in range(300):  # the main process starts another worker
            try:
                if requests.get(f"{server.url}/health/ready", timeout=10).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        assert requests.get(f"{server.url}/health/ready", timeout=10).status_code == 200
        assert first not in _workers(server) and len(_workers(server)) == 1
        assert "WORKER TIMEOUT" in server.log.read_text(errors="replace")


def test_with_threads_a_worker_still_serving_on_one_is_left_alone() -> None:
    """gunicorn's threaded workers are replaced only when the whole worker stops answering."""
    from idp.ops.watchdog import Watchdog

    watchdog = Watchdog(timeout=2, threads=2)
    watchdog.busy = {1: 0.0}  # one thread stuck, the other free
    assert not watchdog.stuck(10.0)
    watchdog.busy = {1: 0.0, 2: 9.0}  # the other busy, but not for long
    assert not watchdog.stuck(10.0)
    watchdog.busy = {1: 0.0, 2: 7.0}
    assert watchdog.stuck(10.0)
    assert not Watchdog(timeout=2, threads=1).stuck(10.0)  # nothing in flight
