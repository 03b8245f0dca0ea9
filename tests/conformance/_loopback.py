"""A loopback HTTP site for the tests of outbound calls: documents served by path (GET, e.g. a
sector identifier document, OIDC Core §8.1) and POSTs recorded (e.g. back-channel logout
tokens), failing the first N of them with a 500. Stdlib ``http.server``, in a thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Site:
    documents: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    posts: list[tuple[str, dict[str, str], dict[str, list[str]]]] = field(default_factory=list)
    fail_posts: int = 0
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Site:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = site.documents.get(self.path, (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with site._lock:
                    site.attempts += 1
                    fail = site.attempts <= site.fail_posts
                    if not fail:
                        form = parse_qs(data.decode())
                        site.posts.append((self.path, dict(self.headers.items()), form))
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
