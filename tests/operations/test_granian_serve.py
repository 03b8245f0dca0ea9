"""``idp serve --server granian``'s own pieces (idp/ops/granian_serve.py) that the served tests
cannot see from outside: the WSGI environ without the process environment granian merges into
it, and the log configuration's streams; and that its workers do not outlive the main process."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import pytest

from idp.ops import granian_serve
from tests.operations.served import served


def test_the_process_environment_is_not_in_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://user:pass@proxy.internal:3128")
    monkeypatch.setenv("IDP_SECRET_KEY", "s" * 48)
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return []

    wrapped = granian_serve.CleanEnviron(app, multiprocess=True, multithread=False)
    scope = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "idp.test"}
    # what granian hands the app: dict(os.environ) | scope (granian/wsgi.py)
    wrapped({"SCRIPT_NAME": "", **dict(os.environ), **scope}, None)
    assert "HTTP_PROXY" not in seen  # would be read as a "Proxy" request header
    assert "IDP_SECRET_KEY" not in seen
    assert "PATH" not in seen
    assert {k: seen[k] for k in scope} == scope
    assert seen["SCRIPT_NAME"] == ""
    assert seen["wsgi.multiprocess"] is True and seen["wsgi.multithread"] is False


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_server_lines_on_stderr_and_the_access_log_as_gunicorn_has_it(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("IDP_LOG_FORMAT", fmt)
    cfg = granian_serve._log_config(access_log=True)
    own, access = cfg["loggers"]["_granian"], cfg["loggers"]["granian.access"]
    assert cfg["handlers"][own["handlers"][0]]["stream"] == "ext://sys.stderr"
    # text: the access log on stdout (gunicorn's --access-logfile -); JSON: every line on stderr
    stream = "ext://sys.stdout" if fmt == "text" else "ext://sys.stderr"
    assert cfg["handlers"][access["handlers"][0]]["stream"] == stream
    silenced = granian_serve._log_config(access_log=False)["loggers"]["granian.access"]
    if fmt == "json":
        assert silenced["level"] == "CRITICAL"


class _Body:
    """A WSGI response iterable that records its close() (PEP 3333: the server must call it)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks, self.closed = chunks, False

    def __iter__(self) -> Any:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def _served(length: str | None, body: _Body) -> tuple[Any, list[Any]]:
    started: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> _Body:
        headers = [("Content-Type", "application/json")]
        start_response("200 OK", headers + ([("Content-Length", length)] if length else []))
        return body

    wrapped = granian_serve.CleanEnviron(app, multiprocess=True, multithread=False)
    return wrapped({}, lambda *args: started.append(args)), started


def test_a_response_of_known_length_goes_to_granian_whole() -> None:
    # a list is what granian sends in one piece (response_bytes: one write, one wake-up of its
    # Rust thread); any other iterable it streams chunk by chunk (response_iter)
    body = _Body(b'{"access_token": ', b'"x"}')
    result, started = _served("21", body)
    assert result == [b'{"access_token": "x"}']
    assert body.closed  # what granian would have called, called here once the body is read
    assert started == [("200 OK", [("Content-Type", "application/json"),
                                   ("Content-Length", "21")], None)]  # fmt: skip


def test_a_stream_or_a_large_body_is_left_to_granian_to_stream() -> None:
    stream = _Body(b"data: 1\n\n")
    assert _served(None, stream)[0] is stream and not stream.closed  # no length: streamed
    large = _Body(b"x" * (granian_serve.WHOLE_BODY_LIMIT + 1))
    result, _ = _served(str(granian_serve.WHOLE_BODY_LIMIT + 1), large)
    assert result is large and not large.closed


@pytest.mark.skipif(importlib.util.find_spec("granian") is None, reason="granian not installed")
def test_workers_stop_when_the_main_process_is_killed(tmp_path: Path) -> None:
    """As gunicorn's workers do when their arbiter is gone: none serves on, orphaned."""
    with served(tmp_path / "instance", "--workers", "2", server="granian") as server:
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        workers = {int(pid) for pid in children.read_text().split()}
        assert len(workers) == 2
        server.proc.kill()
        server.proc.wait(10)
        for _ in range(300):
            alive = {pid for pid in workers if Path(f"/proc/{pid}").exists()
                     and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]}  # fmt: skip
            if not alive:
                break
            time.sleep(0.1)
        assert not alive, f"workers still running: {alive}"
