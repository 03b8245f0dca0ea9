"""A loopback log-stream receiver (stdlib ``http.server``): it can fail its first N
deliveries, answer slowly, and be stopped and started again on the same port (the sender
then finds nobody listening, as when a SIEM restarts)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.ports import free_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    def ids(self) -> list[int]:
        return [int(json.loads(line)["log_id"]) for line in self.body.decode().splitlines()]


@dataclass
class Receiver:
    fail_first: int = 0
    delay: float = 0.0
    status: int = 500  # what a failure answers
    attempts: int = 0
    accepted: list[Delivery] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[int]:
        with self._lock:
            return [i for d in self.accepted for i in d.ids()]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.attempts += 1
                    receiver.inflight += 1
                    receiver.max_inflight = max(receiver.max_inflight, receiver.inflight)
                    fail = receiver.attempts <= receiver.fail_first
                time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.inflight -= 1
                    if not fail:
                        receiver.accepted.append(Delivery(dict(self.headers.items()), data))
                self.send_response(receiver.status if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
