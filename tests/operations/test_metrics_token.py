"""Metrics on the public port, behind ``METRICS_TOKEN`` (a bearer token compared in constant
time), attacked; and the start-up refusals that keep them from opening by accident."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import build_app
from tests.operations.served import IDP, SERVERS, Served, free_port, served, server_env

TOKEN = "metrics-" + "k3y" * 8


@pytest.fixture(scope="module", params=SERVERS)
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    env = {"IDP_METRICS_ENABLED": "1", "IDP_METRICS_TOKEN": TOKEN}
    folder = tmp_path_factory.mktemp("metrics-token")
    with served(folder, "--workers", "1", env=env, server=request.param) as s:
        yield s


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-of-the-same-size-x",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Bearer  {TOKEN[1:]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
    ],
)
def test_without_the_token_401(server: Served, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    resp = requests.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "idp_http_requests_total" not in resp.text


def test_the_token_opens_them(server: Served) -> None:
    resp = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"bearer {TOKEN}"}, timeout=10
    )
    assert resp.status_code == 200
    names = {f.name for f in text_string_to_metric_families(resp.text)}
    assert "idp_http_requests" in names  # the family; its samples end in _total


def _serve(
    tmp_path: Path, server: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``idp serve`` that should refuse to start ({port} in ``args``: its own port)."""
    port = free_port()
    app = build_app(tmp_path, port)
    args = tuple(a.format(port=port) for a in args)
    return subprocess.run(
        [*IDP, "--instance", str(tmp_path), "serve", "--port", str(port), "--server", server, *args],
        capture_output=True, text=True, timeout=60,
        env=server_env(f"http://127.0.0.1:{port}", app, **env),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"IDP_METRICS_ENABLED": "1"}, "needs METRICS_TOKEN"),
        ({"IDP_METRICS_ENABLED": "1", "IDP_METRICS_TOKEN": "short"}, "at least 16"),
        ({"IDP_LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json"),
    ],
)
@pytest.mark.parametrize("server_name", SERVERS)
def test_refused_at_start_up_with_the_reason(
    tmp_path: Path, env: dict[str, str], says: str, server_name: str
) -> None:
    proc = _serve(tmp_path, server_name, env)
    assert proc.returncode != 0
    assert says in proc.stderr, proc.stderr


@pytest.mark.parametrize("server_name", SERVERS)
def test_metrics_port_must_differ(tmp_path: Path, server_name: str) -> None:
    proc = _serve(tmp_path, server_name, {}, "--metrics-port", "{port}")
    assert proc.returncode != 0
    assert "--metrics-port must differ" in proc.stderr
