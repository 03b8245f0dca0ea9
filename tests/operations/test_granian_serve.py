"""``idp serve --server granian``'s own pieces (idp/ops/granian_serve.py) that the served tests
cannot see from outside: the WSGI environ without the process environment granian merges into
it, and the log configuration's streams."""

from __future__ import annotations

import os
from typing import Any

import pytest

from idp.ops import granian_serve


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
