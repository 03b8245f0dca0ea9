"""``IDP_LOG_FORMAT=json``: a real ``idp serve`` (the server's lines and the access log included)
writes one JSON object per line, with the request id that the request's response, execution
records and log events carry, and no token or secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from idp.ops.jsonlog import JsonFormatter
from tests.conftest import build_app
from tests.helpers import Browser, auth_params, login_and_redeem, pkce
from tests.operations.served import SERVERS, Served, served

FIELDS = {"time", "level", "logger", "message", "request_id"}
# each server's own logger and its access log's
LOGGERS = {
    "gunicorn": ("gunicorn.error", "gunicorn.access"),
    "granian": ("_granian", "granian.access"),
}


@pytest.fixture(scope="module", params=SERVERS)
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    env = {"IDP_LOG_FORMAT": "json"}
    folder = tmp_path_factory.mktemp("json-logs")
    with served(folder, "--workers", "1", "--access-log", env=env, server=request.param) as s:
        yield s


def test_every_line_is_json_and_holds_no_secret(server: Served) -> None:
    client, user = server.factory.gen_client(), server.factory.gen_user()
    tokens = login_and_redeem(server.url, client, user, scope="openid offline_access")
    _, challenge = pkce()
    Browser(server.url).authorize(auth_params(client, challenge), user, password="wrong-one")
    m2m, audience = server.factory.m2m()
    machine = requests.post(
        f"{server.url}/oauth/token", auth=m2m.basic,
        data={"grant_type": "client_credentials", "audience": audience}, timeout=30,
    )  # fmt: skip
    assert machine.status_code == 200
    assert server.stop() == 0

    lines = [line for line in server.output().splitlines() if line.strip()]
    objects = [json.loads(line) for line in lines]  # each line one object, or this fails
    assert all(isinstance(o, dict) and o.keys() >= FIELDS for o in objects), lines[:5]
    loggers = {o["logger"] for o in objects}
    own, access_logger = LOGGERS[server.kind]
    assert {own, access_logger} <= loggers, loggers
    access = [o["message"] for o in objects if o["logger"] == access_logger]
    assert any('"POST /oauth/token" 200 ' in m for m in access), access
    assert not any("?" in m for m in access), access  # the path, never the query string
    text = "\n".join(lines)
    for secret in (
        tokens["access_token"], tokens["refresh_token"], tokens["id_token"],
        machine.json()["access_token"], client.client_secret, m2m.client_secret,
        user.password, "wrong-one",
    ):  # fmt: skip
        assert secret and secret not in text


@pytest.fixture
def root_logger_kept() -> Iterator[None]:
    """An app with LOG_FORMAT=json sets up the root logger (as ``idp serve --dev`` would):
    put it back for the tests that follow in this process."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logger_kept")
def test_a_log_line_in_a_request_carries_its_request_id(tmp_path: Path) -> None:
    app: Flask = build_app(tmp_path, 5999, LOG_FORMAT="json")
    root = logging.getLogger()
    assert any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    keep = Keep()
    keep.setFormatter(JsonFormatter())
    logger = logging.getLogger("idp.test-json")
    logger.addHandler(keep)

    @app.route("/_log-something")
    def _log_something() -> str:
        logger.warning("something happened\nover two lines")
        return "ok"

    try:
        resp = app.test_client().get("/_log-something")
    finally:
        logger.removeHandler(keep)
    assert resp.status_code == 200
    (line,) = lines
    entry = json.loads(line)
    assert entry["request_id"] == resp.headers["X-Request-Id"]
    assert entry["request_id"].startswith("req_")
    assert entry["message"] == "something happened\nover two lines"
    assert entry["level"] == "WARNING" and entry["logger"] == "idp.test-json"
    assert entry["time"].endswith("Z")
    # outside a request: no id
    logger.addHandler(keep)
    try:
        logger.warning("no request here")
    finally:
        logger.removeHandler(keep)
    assert json.loads(lines[-1])["request_id"] is None
