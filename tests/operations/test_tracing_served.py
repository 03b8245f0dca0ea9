"""Traces from a real ``idp serve`` (gunicorn's or granian's worker processes, issue 17): the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` alone turns tracing on, the worker exports by OTLP/HTTP, and what
is still in the batch processor when SIGTERM stops the server is flushed before the worker exits.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.operations.served import SERVERS, served

BODIES: list[tuple[str, bytes]] = []


class Collector(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        BODIES.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_served_worker_exports_its_spans_and_flushes_them_on_sigterm(
    tmp_path: Path, collector: str, server_name: str
) -> None:
    BODIES.clear()
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,  # nothing else asks for traces
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # no export by the timer: only the exit's flush
    }
    with served(tmp_path / "instance", "--workers", "1", env=env, server=server_name) as server:
        client, audience = server.factory.m2m()
        resp = requests.post(
            f"{server.url}/oauth/token",
            data={"grant_type": "client_credentials", "audience": audience},
            auth=client.basic, headers={"traceparent": traceparent}, timeout=30,
        )  # fmt: skip
        assert resp.status_code == 200, resp.text
        assert server.stop() == 0, server.output()[-2000:]
    assert BODIES and {path for path, _ in BODIES} == {"/v1/traces"}
    spans = []
    for _, body in BODIES:
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    mine = [s for s in spans if s.trace_id.hex() == trace_id]
    names = {s.name for s in mine}
    assert {"POST /oauth/token", "token.sign"} <= names, names
    assert any(a.key == "db.operation.name" for s in mine for a in s.attributes), names
    assert resp.json()["access_token"] not in str(spans)
