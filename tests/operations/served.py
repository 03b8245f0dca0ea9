"""A real ``idp serve`` (gunicorn or granian, its own process) on a fresh instance: the schema, the secret
and a signing key made by :func:`tests.conftest.build_app`, whose app the tests keep to create
users and clients (``factory``) and to read the database."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from idp.extensions import db
from tests.conftest import build_app
from tests.factories import Factory
from tests.ports import free_port

_SCRIPT = Path(sys.executable).parent / "idp"
IDP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "idp"]

# ``idp serve --server``: the tests of a real server run on each (granian is an extra)
SERVERS = [
    pytest.param("gunicorn"),
    pytest.param("granian", marks=pytest.mark.skipif(
        importlib.util.find_spec("granian") is None,
        reason="granian is not installed (pip install 'idp[granian]')",
    )),
]  # fmt: skip
# what each server logs once SIGTERM has reached its main process
STOPPING = {"gunicorn": "Handling signal: term", "granian": "Shutting down granian"}


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path
    instance: Path
    app: Flask
    metrics_port: int | None = None
    kind: str = "gunicorn"  # the server: gunicorn or granian
    factory: Factory = field(init=False)

    def __post_init__(self) -> None:
        self.factory = Factory(self.app)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port or self.port}/metrics"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def server_env(url: str, app: Flask, **extra: str) -> dict[str, str]:
    """The test run's environment without its IDP_* (another test's settings) plus the fast
    hashing and no caches, as the in-process servers have (tests/conftest.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        IDP_ISSUER=url,
        IDP_DATABASE_URL=app.config["DATABASE_URL"],
        IDP_ARGON2_TIME_COST="1",
        IDP_ARGON2_MEMORY_KIB="1024",
        IDP_CLIENT_CACHE_SECONDS="0",
        IDP_KEY_CACHE_SECONDS="0",
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


@contextmanager
def served(
    tmp: Path,
    *args: str,
    metrics_port: bool = False,
    env: dict[str, str] | None = None,
    server: str = "gunicorn",
    **overrides: Any,
) -> Iterator[Served]:
    """``idp serve --server server`` with ``args`` (``--workers 2`` ...); ``metrics_port``: on a
    port of its own."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = build_app(tmp, port, **overrides)
    argv = [*IDP, "--instance", str(tmp), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--server", server]
    mport = free_port() if metrics_port else None
    if mport is not None:
        argv += ["--metrics-port", str(mport)]
    log = tmp.parent / f"{tmp.name}-serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, *args], stdout=out, stderr=subprocess.STDOUT,
            env=server_env(url, app, **(env or {})),
        )  # fmt: skip
    server = Served(proc, url, port, log, tmp, app, mport, kind=server)
    try:
        wait_until_up(server)
        yield server
    finally:
        if proc.poll() is None:
            server.stop()
        with app.app_context():
            db.engine.dispose()


def wait_until_up(server: Served, tries: int = 600) -> None:
    """Until the public port answers (bounded: 600 tries of 0.1 s; workers boot slowly on a
    loaded machine); the process must stay up."""
    for _ in range(tries):
        if server.proc.poll() is not None:
            raise AssertionError(f"idp serve exited:\n{server.output()[-3000:]}")
        try:
            requests.get(f"{server.url}/health/live", timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise AssertionError(f"idp serve did not answer:\n{server.output()[-3000:]}")
