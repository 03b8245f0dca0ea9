"""A server whose actions may reach loopback over plain http, and a webhook receiver there."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from idp.cli import main
from tests.conftest import TEST_DB_URL, LiveServer, build_app, serving


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Like tests/conftest.py's, with 127.0.0.1 allowed to actions (the receiver is there):
    the SSRF guard otherwise refuses loopback and plain http, as it must in production."""
    tmp = tmp_path_factory.mktemp("instance")
    with serving(
        lambda port: build_app(tmp, port, ACTIONS_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32")
    ) as server:
        yield server


def cli() -> CliRunner:
    return CliRunner(env={"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})


def idp(op: Any, *args: str) -> Any:
    result = cli().invoke(
        main, ["--instance", op.app.instance_path, "--json", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def idp_fails(op: Any, *args: str) -> str:
    result = cli().invoke(main, ["--instance", op.app.instance_path, *args])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    return str(result.output)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook endpoint on 127.0.0.1: records every request; ``/status/N`` answers N."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    Received(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                status = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200
                body = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.host = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int = 1, seconds: float = 10.0) -> list[Received]:
        """Poll: post-user-registration delivers from a background thread."""
        deadline = time.monotonic() + seconds
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.requests.clear()
    return receiver_server
