"""idp.core.http: the one outbound client and its SSRF guard, against a real loopback server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from idp.core import http

LOOPBACK = http.parse_networks("127.0.0.1/32")


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Handler.seen.append((self.command, self.path, dict(self.headers), body))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if self.path == "/drip":  # a byte every 0.1 s: each read is quick, the whole is not
            self.send_response(200)
            self.send_header("Content-Length", "60")
            self.end_headers()
            for _ in range(60):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return
        payload = b"x" * 4096 if self.path == "/big" else b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_allowed_private_receiver_is_reached(receiver: str) -> None:
    answer = http.fetch(
        "POST",
        f"http://{receiver}/hook?x=1",
        allowed_hosts=[receiver],
        allowed_networks=LOOPBACK,
        headers={"Authorization": "Bearer t", "Host": "evil.test"},
        body=b'{"a": 1}',
    )
    assert answer.status == 200
    assert answer.as_json_reply()["json"] == {"ok": True}
    method, path, headers, body = Handler.seen[-1]
    assert (method, path, body) == ("POST", "/hook?x=1", b'{"a": 1}')
    assert headers["Authorization"] == "Bearer t"
    assert headers["Host"] != "evil.test"  # hop-by-hop and Host are ours, not the caller's


@pytest.mark.parametrize(
    ("url", "allowed", "message"),
    [
        ("http://127.0.0.1:9/x", ["127.0.0.1:9"], "non-public"),
        ("http://localhost:9/x", ["localhost:9"], "non-public"),
        ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254"], "non-public"),
        ("http://10.0.0.1/", ["10.0.0.1"], "non-public"),
        ("http://[::1]:9/", ["[::1]:9"], "non-public"),
        ("http://[::1]:9/", ["[::1]:10"], "allow-list"),
        ("https://example.com/", ["example.org"], "allow-list"),
        ("https://user:pass@example.com/", ["example.com"], "credentials"),
        ("file:///etc/passwd", ["example.com"], "http"),
        ("gopher://example.com/", ["example.com"], "http"),
    ],
)
def test_the_guard_refuses(url: str, allowed: list[str], message: str) -> None:
    with pytest.raises(http.FetchRefused, match=message):
        http.fetch("GET", url, allowed_hosts=allowed)


def test_plain_http_to_a_public_address_is_refused() -> None:
    with pytest.raises(http.FetchRefused):
        http.fetch("GET", "http://93.184.215.14/", allowed_hosts=["93.184.215.14"])


def test_redirects_are_returned_not_followed(receiver: str) -> None:
    answer = http.fetch(
        "GET", f"http://{receiver}/redirect", allowed_hosts=[receiver], allowed_networks=LOOPBACK
    )
    assert answer.status == 302
    assert Handler.seen[-1][1] == "/redirect"  # nothing went to the metadata address


def test_the_response_size_is_capped(receiver: str) -> None:
    with pytest.raises(http.FetchRefused, match="larger"):
        http.fetch(
            "GET",
            f"http://{receiver}/big",
            allowed_hosts=[receiver],
            allowed_networks=LOOPBACK,
            max_body=1024,
        )


def test_a_dripping_answer_is_cut_at_the_whole_timeout(receiver: str) -> None:
    """The timeout bounds the whole request, not each read (a server sending a byte at a time
    would otherwise hold the caller, and whatever it holds, for as long as it likes)."""
    with pytest.raises(http.FetchRefused, match="longer than the timeout"):
        http.fetch(
            "GET", f"http://{receiver}/drip", allowed_hosts=[receiver],
            allowed_networks=LOOPBACK, timeout=0.5,
        )  # fmt: skip


def test_header_injection_is_refused(receiver: str) -> None:
    """A header value with CR/LF or a non-ASCII character is refused before anything is sent
    (the message does not repeat the value: it may be a token)."""
    before = len(Handler.seen)
    for value in ("a\r\nInjected: yes", "Bearer t\u00e9", "x\ry"):
        with pytest.raises(http.FetchRefused, match="printable ASCII") as refused:
            http.fetch(
                "GET",
                f"http://{receiver}/h",
                allowed_hosts=[receiver],
                allowed_networks=LOOPBACK,
                headers={"X-Ok": "1", "X-Evil": value},
            )
        assert value not in str(refused.value)
    assert len(Handler.seen) == before  # nothing reached the receiver
