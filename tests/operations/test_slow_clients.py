"""A client that sends its request body slowly (a slow link, or a slowloris attack) must not
hold the connections queued behind it. granian's Rust thread accepts connections for a worker
while its Python thread runs a request, so with one Python thread a slow body stalled every
connection queued at that worker; ``idp serve`` (granian) runs two a worker by default, and the
other serves them (README, "The server")."""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from tests.operations.served import served

SLOW_HEAD = (
    b"POST /oauth/token HTTP/1.1\r\nHost: idp\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type="
)


def test_a_slow_request_body_does_not_hold_the_workers_queue(tmp_path: Path) -> None:
    with served(tmp_path / "instance", "--workers", "1", server="granian") as server:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(SLOW_HEAD)  # 11 of its 100 bytes, then nothing
            answered = [
                requests.get(f"{server.url}/health/live", timeout=5).status_code for _ in range(5)
            ]
        assert answered == [200] * 5
