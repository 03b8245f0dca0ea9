"""SIGTERM to a real ``idp serve`` while a request is in flight: the request is answered, the
process exits 0, the worker's sandbox zygotes are gone, and the execution record the request
queued in memory is in the database.

The worker also holds a log stream's lease (for ten minutes): it is given back at the stop,
so it was the worker's last flush and not the lease's expiry that freed it.

The slow request is a client-credentials token whose credentials-exchange action calls a gate
(a loopback HTTP server of this test) through ``api.http``: the gate says when the request is
in the worker, and holds it until the server has been told to stop."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.actions.models import ActionExecution
from idp.extensions import db, services
from idp.logstreams import service as logstreams
from idp.logstreams.models import LogStream
from tests.operations.served import SERVERS, STOPPING, Served, served


class Gate:
    def __init__(self) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.arrived.set()
                gate.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_POST(self) -> None:  # the log stream's receiver
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.close()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


STREAMS = {
    "IDP_LOG_STREAM_HOSTS": "127.0.0.1",
    "IDP_LOG_STREAM_ALLOW_NETWORKS": "127.0.0.1/32",
    "IDP_LOG_STREAM_POLL_SECONDS": "0.1",
    "IDP_LOG_STREAM_LEASE_SECONDS": "600",
}


def _log_stream(server: Served, gate: Gate) -> str:
    config = dict(server.app.config, LOG_STREAM_HOSTS="127.0.0.1",
                  LOG_STREAM_ALLOW_NETWORKS="127.0.0.1/32")  # fmt: skip
    with server.app.app_context():
        stream, _ = logstreams.create(db.session, services().box, config, name="sink",
                                      endpoint=f"http://{gate.host}/")  # fmt: skip
        db.session.commit()
        return stream.id


def _until_leased(server: Served, stream_id: str) -> None:
    for _ in range(300):
        with server.app.app_context():
            row = db.session.get(LogStream, stream_id)
            if row is not None and row.leased_by is not None:
                return
            db.session.rollback()
        time.sleep(0.1)
    raise AssertionError(f"the worker never took the log stream's lease: {server.output()[-2000:]}")


@pytest.mark.parametrize("server_name", SERVERS)
def test_sigterm_finishes_the_request_flushes_and_stops_the_sandboxes(
    tmp_path: Path, gate: Gate, server_name: str
) -> None:
    env = {"IDP_ACTIONS_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32", **STREAMS}
    if not shutil.which("bwrap"):  # the zygote without bubblewrap: still a process per worker
        env["IDP_ACTIONS_INSECURE_DEV"] = "1"
    with served(tmp_path / "instance", "--workers", "1", env=env, server=server_name) as server:
        stream_id = _log_stream(server, gate)
        _until_leased(server, stream_id)  # an idle loop looks again within 10 s
        client, audience = server.factory.m2m()
        action_id = server.factory.gen_action(
            "slow", "credentials-exchange",
            "def on_execute_credentials_exchange(event, api):\n"
            f"    api.http.get('http://{gate.host}/', timeout=15)\n"
            "    api.access_token.set_custom_claim('https://example.com/gated', True)\n",
            allowed_hosts=[gate.host], timeout_ms=20_000,
        )  # fmt: skip
        answer: dict[str, Any] = {}

        def token() -> None:
            resp = requests.post(
                f"{server.url}/oauth/token", auth=client.basic,
                data={"grant_type": "client_credentials", "audience": audience}, timeout=120,
            )  # fmt: skip
            answer["status"], answer["body"] = resp.status_code, resp.text

        caller = threading.Thread(target=token)
        caller.start()
        assert gate.arrived.wait(120), server.output()[-3000:]
        workers = children(server.proc.pid)
        zygotes = [z for w in workers for z in children(w)]
        assert zygotes, "the action ran in no zygote"
        grandchildren = [c for z in zygotes for c in children(z)]

        server.proc.terminate()  # SIGTERM to the server's main process
        for _ in range(300):  # until the master has begun stopping, then let the action finish
            if STOPPING[server_name] in server.output():
                break
            time.sleep(0.1)
        time.sleep(0.5)
        gate.release.set()
        caller.join(120)
        assert answer.get("status") == 200, (answer, server.output()[-3000:])
        assert server.proc.wait(timeout=90) == 0, server.output()[-3000:]

        assert not [p for p in [*workers, *zygotes, *grandchildren] if running(p)]
        with server.app.app_context():
            records = db.session.scalars(
                select(ActionExecution).where(ActionExecution.action_id == action_id)
            ).all()
            leased_by = db.session.get(LogStream, stream_id).leased_by  # type: ignore[union-attr]
        assert [r.outcome for r in records] == ["success"]
        assert leased_by is None
        assert os.path.exists(server.log)
