"""OpenTelemetry traces (issue 17, idp/ops/tracing.py and idp/core/tracing.py).

A traced server keeps its spans in memory (``OTEL_EXPORTER=memory``): a login over HTTP whose
requests carry one W3C ``traceparent`` is one trace, with the requests, the password hash, the
post-login action (and its outbound HTTP, which carries the trace on), every SQL statement and
the token signing, each span's parent where it belongs; no attribute holds a password, token,
secret, cookie, email or code. Without ``traceparent`` the password POST is a trace of its own
with all of that inside. Tracing is off by default, stays with its app, the server starts and
serves without OpenTelemetry installed, and a real OTLP/HTTP export reaches a receiver on
loopback as protobuf at ``/v1/traces``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from idp.core import tracing as hooks
from idp.extensions import db, services
from idp.identity.models import User
from idp.ops.tracing import describe
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, jwt_parts, pkce

ROOT = Path(__file__).resolve().parents[2]
SECRET = "act-secret-" + secrets.token_hex(8)
ACTION = """
def on_execute_post_login(event, api):
    answer = api.http.get(event.configuration.url, headers={"Authorization": "Bearer " + event.secrets.KEY})
    api.id_token.set_custom_claim("https://x/called", answer.status)
"""


class Receiver(BaseHTTPRequestHandler):
    """Records every request (path, headers, body) and answers 200."""

    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        Receiver.seen.append((self.command, self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _record

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("traced")
    with serving(
        lambda port: build_app(
            tmp,
            port,
            OTEL_ENABLED=True,
            OTEL_EXPORTER="memory",
            ACTIONS_ALLOW_PRIVATE_NETWORKS="127.0.0.1/32",
        )
    ) as server:
        yield server


def _exporter(server: LiveServer) -> Any:
    return server.app.extensions["idp.tracing"].exporter


def _login(op: LiveServer, receiver: str, traceparent: str | None) -> dict[str, Any]:
    """A code-flow login and code redemption with one post-login action that calls out; what
    a span must never show is returned with the tokens."""
    op.factory.clear_actions()
    op.factory.gen_action(
        "traced", "post-login", ACTION, secrets={"KEY": SECRET},
        configuration={"url": f"http://{receiver}/hook"}, allowed_hosts=[receiver],
    )  # fmt: skip
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    if traceparent:
        browser.http.headers["traceparent"] = traceparent
    _exporter(op).clear()
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge), user)
    assert result.code, (result.status, result.page[:300])
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "authorization_code", "code": result.code,
              "redirect_uri": client.redirect_uri, "code_verifier": verifier},
        auth=client.basic, headers={"traceparent": traceparent} if traceparent else {},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert jwt_parts(tokens["id_token"])[1]["https://x/called"] == 200  # the action ran
    never = [user.password, user.email, SECRET, result.code, verifier, str(client.client_secret)]
    never += [tokens["access_token"], tokens["id_token"], tokens.get("refresh_token") or ""]
    never += [c.value for c in browser.http.cookies if c.value]
    return {
        "never": [v for v in never if v and len(v) >= 6],
        "spans": _exporter(op).get_finished_spans(),
    }


def _by_id(spans: Any) -> dict[int, Any]:
    return {s.context.span_id: s for s in spans}


def _ancestors(span: Any, by_id: dict[int, Any]) -> list[Any]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def _assert_nothing_secret(spans: Any, never: list[str]) -> None:
    for span in spans:
        shown = [span.name, span.status.description or ""]
        shown += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        shown += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
        for text in shown:
            for value in never:
                assert value not in text, f"span {span.name!r} shows a secret: {text!r}"


def test_a_login_carrying_traceparent_is_one_trace(traced: LiveServer, receiver: str) -> None:
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    Receiver.seen.clear()
    seen = _login(traced, receiver, f"00-{trace_id}-{caller}-01")
    spans, by_id = seen["spans"], _by_id(seen["spans"])
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}, "not one trace"

    requests_ = [s for s in spans if s.kind == SpanKind.SERVER]
    names = {s.name for s in requests_}
    assert {"GET /authorize", "POST /interaction/<uid>/login", "POST /oauth/token"} <= names
    for span in requests_:  # every request is the caller's child
        assert span.parent is not None and format(span.parent.span_id, "016x") == caller
        assert span.attributes["http.response.status_code"] in (200, 302, 303)
    for span in spans:  # every other span hangs under a request of this trace
        if span.kind != SpanKind.SERVER:
            assert span.parent is not None and span.parent.span_id in by_id, span.name
            assert _ancestors(span, by_id)[-1].kind == SpanKind.SERVER, span.name

    (login_post,) = [s for s in requests_ if s.name == "POST /interaction/<uid>/login"]
    (token_post,) = [s for s in requests_ if s.name == "POST /oauth/token"]
    (hash_span,) = [s for s in spans if s.name == "password.verify"]
    assert hash_span.parent.span_id == login_post.context.span_id
    (action,) = [s for s in spans if s.name == "action traced"]
    assert login_post in _ancestors(action, by_id)
    assert action.attributes["idp.action.trigger"] == "post-login"
    assert action.attributes["idp.action.name"] == "traced"
    assert action.attributes["idp.action.version"] == 1
    assert action.attributes["idp.action.outcome"] == "success"
    (call,) = [s for s in spans if s.name == "HTTP GET"]
    assert call.kind == SpanKind.CLIENT and call.parent.span_id == action.context.span_id
    assert call.attributes["http.response.status_code"] == 200
    # the service the action called joined the trace, as the HTTP span's child
    ((_, _path, headers, _body),) = [r for r in Receiver.seen if r[1] == "/hook"]
    assert headers["traceparent"] == (f"00-{trace_id}-{format(call.context.span_id, '016x')}-01")

    statements = [s for s in spans if "db.operation.name" in (s.attributes or {})]
    assert any(s.name == "SELECT users" and login_post in _ancestors(s, by_id) for s in statements)
    assert any(
        s.attributes["db.operation.name"] == "INSERT" and login_post in _ancestors(s, by_id)
        for s in statements
    ), "the code's insert is not in the login's trace"
    assert any(token_post in _ancestors(s, by_id) for s in statements)
    for span in statements:
        assert span.kind == SpanKind.CLIENT
        assert set(span.attributes) <= {
            "db.system.name",
            "db.operation.name",
            "db.collection.name",
            "db.operation.batch.size",
        }
    signing = [s for s in spans if s.name == "token.sign"]
    assert signing and all(token_post in _ancestors(s, by_id) for s in signing)
    assert {s.attributes["jwt.typ"] for s in signing} == {"at+jwt", "JWT"}
    _assert_nothing_secret(spans, seen["never"])


def test_without_traceparent_the_password_post_is_a_trace_of_its_own(
    traced: LiveServer, receiver: str
) -> None:
    seen = _login(traced, receiver, None)
    spans, by_id = seen["spans"], _by_id(seen["spans"])
    requests_ = [s for s in spans if s.kind == SpanKind.SERVER]
    assert all(s.parent is None for s in requests_), "a request joined a trace nobody sent"
    assert len({s.context.trace_id for s in requests_}) == len(requests_)
    (hash_span,) = [s for s in spans if s.name == "password.verify"]
    login_trace = [s for s in spans if s.context.trace_id == hash_span.context.trace_id]
    roots = [s for s in login_trace if s.parent is None]
    assert [r.name for r in roots] == ["POST /interaction/<uid>/login"]
    names = {s.name for s in login_trace}
    assert {"password.verify", "action traced", "HTTP GET", "SELECT users"} <= names
    assert all(_ancestors(s, by_id)[-1] is roots[0] for s in login_trace if s is not roots[0])
    _assert_nothing_secret(spans, seen["never"])


def test_work_outside_a_request_starts_no_trace(traced: LiveServer) -> None:
    """Background loops and the CLI run SQL, hash and sign with an app context but no request:
    no span, so no trace per background query."""
    _exporter(traced).clear()
    with traced.app.app_context():
        with hooks.span("anything") as span:
            assert span is hooks.NO_SPAN
        assert db.session.execute(select(User.id)).all() is not None
        db.session.commit()
        assert not services().passwords.verify(None, "not-a-password")
    assert _exporter(traced).get_finished_spans() == ()


def test_a_statement_span_names_only_a_known_verb_and_one_of_our_tables() -> None:
    assert describe('SELECT "users"."id" FROM users WHERE email = ?') == ("SELECT", "users")
    assert describe("INSERT INTO authorization_codes (code_hash) VALUES (%(h)s)") == (
        "INSERT", "authorization_codes",
    )  # fmt: skip
    assert describe("UPDATE interactions SET state = :s") == ("UPDATE", "interactions")
    # a literal in hand-written SQL never becomes a name
    assert describe("SELECT 'from hunter2' AS x") == ("SELECT", None)
    assert describe("VACUUM secret_table") == ("OTHER", None)


def test_tracing_is_off_by_default_and_stays_with_its_app(
    traced: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with serving(lambda port: build_app(tmp_path, port)) as plain:
        assert "idp.tracing" not in plain.app.extensions
        with plain.app.test_request_context("/"):
            assert hooks.span("password.verify") is hooks.NO_SPAN  # another app traces
        _exporter(traced).clear()
        client, user = plain.factory.gen_client(), plain.factory.gen_user()
        _verifier, challenge = pkce()
        result = Browser(plain.url).authorize(auth_params(client, challenge), user)
        assert result.code
        assert _exporter(traced).get_finished_spans() == (), "the untraced app made spans"


def test_the_server_runs_without_opentelemetry_installed(tmp_path: Path) -> None:
    """The extra is optional: with every ``opentelemetry`` import failing, idp imports, starts
    and answers; OTEL_ENABLED then refuses to start, saying why; a lone endpoint variable is
    ignored with a warning."""
    script = f"""
import sys, logging
sys.modules["opentelemetry"] = None  # every import of it raises ImportError
from idp import create_app
from idp.core import migrate
from idp.extensions import db, services
from idp.keys.service import create_key
config = {{"ISSUER": "http://127.0.0.1:9", "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024}}
app = create_app(config, instance_path={str(tmp_path)!r})
with app.app_context():
    migrate.upgrade(db.engine)
    create_key(db.session, services().box, "RS256")
    db.session.commit()
answer = app.test_client().get("/.well-known/openid-configuration")
assert answer.status_code == 200, answer.status_code
assert "idp.tracing" not in app.extensions
try:
    create_app(dict(config, OTEL_ENABLED=True), instance_path={str(tmp_path)!r})
except RuntimeError as exc:
    print("refused:", exc)
import os
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
logging.basicConfig()
quiet = create_app(config, instance_path={str(tmp_path)!r})
print("endpoint only:", "idp.tracing" in quiet.extensions)
print("loaded:", sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v))
"""
    (tmp_path / "secret.key").write_text(secrets.token_urlsafe(48))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: OTEL_ENABLED is on but OpenTelemetry is not installed" in done.stdout
    assert "pip install 'idp[otel]'" in done.stdout
    assert "endpoint only: False" in done.stdout
    assert "OpenTelemetry is not installed: no traces" in done.stderr
    assert "loaded: []" in done.stdout, done.stdout


def test_spans_reach_an_otlp_http_receiver(receiver: str, tmp_path: Path) -> None:
    """The real exporter: OTLP over HTTP, protobuf at <endpoint>/v1/traces, on loopback."""
    Receiver.seen.clear()
    app = build_app(tmp_path, 9, OTEL_ENABLED=True, OTEL_ENDPOINT=f"http://{receiver}")
    tracing = app.extensions["idp.tracing"]
    try:
        answer = app.test_client().get(
            "/.well-known/openid-configuration",
            headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"},
        )
        assert answer.status_code == 200
        assert tracing.flush()
    finally:
        tracing.provider.shutdown()
        with app.app_context():
            services().actions.close()
            db.engine.dispose()
    exports = [r for r in Receiver.seen if r[1] == "/v1/traces"]
    assert exports and all(r[0] == "POST" for r in exports)
    assert exports[0][2]["content-type"] == "application/x-protobuf"
    spans, resources = [], []
    for *_, body in exports:
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            resources.append(
                {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            )
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert all(r["service.name"] == "idp" for r in resources)
    (request_span,) = [s for s in spans if s.name == "GET /.well-known/openid-configuration"]
    assert request_span.trace_id.hex() == "ab" * 16
    assert request_span.parent_span_id.hex() == "cd" * 8
    attributes = {a.key: a.value for a in request_span.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["http.route"].string_value == "/.well-known/openid-configuration"
