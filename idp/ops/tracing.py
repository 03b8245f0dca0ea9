"""OpenTelemetry traces, off unless ``OTEL_ENABLED`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (issue 17).

An app that traces gets its own ``TracerProvider`` (``app.extensions["idp.tracing"]``) and:

* a span per request (kind server), named by the method and the matched route (never the path,
  which may carry an interaction handle, nor the query), the child of the caller's span when the
  request carries a W3C ``traceparent`` (Trace Context §3.2); its status code and request id;
* a span per SQL statement (kind client; an ``executemany`` batch is one), named by its verb
  and table; the statement's text and parameters are never recorded;
* the spans of :mod:`idp.core.tracing` (password hash, actions, token signing, outbound HTTP
  with ``traceparent`` injected).

Spans are made only inside a traced request: background loops (log streams, back-channel
deliveries, the execution-record writer) and the CLI start no trace of their own.

The exporter is OTLP/HTTP (protobuf, ``<endpoint>/v1/traces``) behind a batch processor, with
the exporter's own HTTP session rather than :mod:`idp.core.http`: the collector is the
operator's infrastructure, named by the operator's configuration like the database and Redis,
never by a tenant or a request, and it is usually on loopback or a private network, which the
SSRF guard exists to refuse. ``OTEL_EXPORTER=console`` writes spans to stderr; ``memory`` keeps
them in the process (tests). Exceptions mark a span's status with their type only: an
exception's message may quote a value, so it is not recorded.

Without the ``otel`` extra installed, nothing here imports OpenTelemetry unless tracing is asked
for: ``OTEL_ENABLED`` then refuses to start with the reason, a lone endpoint variable is
logged and ignored.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Flask, g, request
from werkzeug.wrappers import Response

from idp.core import tracing as hooks
from idp.core.db import Base

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
VERBS = frozenset({
    "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT",
    "RELEASE", "PRAGMA", "CREATE", "DROP", "ALTER", "LOCK",
})  # fmt: skip
_VERB = re.compile(r"\s*(\w+)")
_TABLE = re.compile(r"\b(?:INTO|UPDATE|FROM)\s+\"?(\w+)", re.IGNORECASE)
UNMATCHED = "unmatched"  # no route: the path is not a bounded name


def wanted(config: Any) -> bool:
    """Tracing was asked for: the switch, or the standard endpoint variables (unless the
    standard ``OTEL_SDK_DISABLED`` says no)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(config["OTEL_ENABLED"]) or any(os.environ.get(v) for v in ENDPOINT_VARIABLES)


def init_app(app: Flask) -> None:
    """Trace this app's requests when asked to; otherwise install nothing at all."""
    if not wanted(app.config):
        return
    try:
        from opentelemetry.sdk.trace import TracerProvider  # noqa: F401 - the extra is there
    except ImportError:
        if app.config["OTEL_ENABLED"]:
            raise RuntimeError(
                "OTEL_ENABLED is on but OpenTelemetry is not installed: "
                "pip install 'idp[otel]' (opentelemetry-sdk and the OTLP/HTTP exporter)"
            ) from None
        log.warning("an OTLP endpoint is set but OpenTelemetry is not installed: no traces")
        return
    tracing = AppTracing.build(app.config)
    app.extensions["idp.tracing"] = tracing
    # first, so the request's span is current for every other hook and the view
    app.before_request_funcs.setdefault(None, []).insert(0, tracing.request_started)
    app.after_request(tracing.request_answered)
    app.teardown_request(tracing.request_ended)
    tracing.watch_statements(app.extensions["idp.db"][0])
    hooks.enable()


def describe(statement: str) -> tuple[str, str | None]:
    """The verb and the table of a statement: a verb we know (else ``OTHER``) and one of our
    tables (else none), so nothing else of the text (a literal) can reach a span."""
    verb, table = _parse(statement)
    return verb, (table if table in Base.metadata.tables else None)


@lru_cache(maxsize=1024)
def _parse(statement: str) -> tuple[str, str | None]:
    verb_match = _VERB.match(statement)
    verb = verb_match.group(1).upper() if verb_match else ""
    table_match = _TABLE.search(statement)
    return (verb if verb in VERBS else "OTHER"), (
        table_match.group(1).lower() if table_match else None
    )


@dataclass
class AppTracing:
    """One app's tracer provider, tracer and propagator (the ``Tracing`` of idp.core.tracing)."""

    provider: Any
    tracer: Any
    exporter: Any

    @classmethod
    def build(cls, config: Any) -> AppTracing:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create({})
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "idp"}))
        provider = TracerProvider(resource=resource, sampler=_sampler())
        exporter = _exporter(config)
        provider.add_span_processor(_processor(config, exporter))
        return cls(provider, provider.get_tracer("idp"), exporter)

    def flush(self) -> bool:
        return bool(self.provider.force_flush())

    # ------------------------------------------------------- idp.core.tracing's hooks
    def span(
        self, name: str, attributes: hooks.Attributes | None, client: bool
    ) -> AbstractContextManager[hooks.SpanLike]:
        """A child of the current span; nothing outside a traced request (a background loop's
        deliveries, the CLI), so no trace starts anywhere but at a request."""
        from opentelemetry import trace

        if not trace.get_current_span().is_recording():
            return hooks.NO_SPAN
        return self._child(name, attributes, client)

    @contextmanager
    def _child(
        self, name: str, attributes: hooks.Attributes | None, client: bool
    ) -> Iterator[hooks.SpanLike]:
        from opentelemetry.trace import SpanKind

        kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
        with self.tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,  # the SDK's would quote the exception's message
        ) as span:
            try:
                yield span
            except BaseException as exc:
                _failed(span, exc)
                raise

    def inject(self, headers: dict[str, str]) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        TraceContextTextMapPropagator().inject(headers)

    # ----------------------------------------------------------------- requests
    def request_started(self) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(request.headers)  # W3C traceparent
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        span = self.tracer.start_span(
            f"{request.method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "http.route": route,
                "url.scheme": request.scheme,
            },
            record_exception=False,
        )
        g.idp_trace = (span, context.attach(trace.set_span_in_context(span, parent)))

    def request_answered(self, resp: Response) -> Response:
        held = g.get("idp_trace")
        if held is not None:
            held[0].set_attribute("http.response.status_code", resp.status_code)
            request_id = g.get("idp_request_id")
            if request_id:  # the id of the execution records, log events and X-Request-Id
                held[0].set_attribute("idp.request_id", request_id)
            if resp.status_code >= 500:
                from opentelemetry.trace import Status, StatusCode

                held[0].set_status(Status(StatusCode.ERROR))
        return resp

    def request_ended(self, exc: BaseException | None) -> None:
        from opentelemetry import context

        held = g.pop("idp_trace", None)
        if held is None:
            return
        span, token = held
        if exc is not None:
            _failed(span, exc)
        span.end()
        context.detach(token)

    # ---------------------------------------------------------------- SQL
    def _statement_span(self, sql: str, dialect: str, many: int | None) -> Any:
        """A started span for a statement, or None outside a traced request (background
        loops make no trace of their own for each query)."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        if not trace.get_current_span().is_recording():
            return None
        verb, table = describe(sql)
        system = "sqlite" if dialect == "sqlite" else "postgresql"
        attributes: dict[str, Any] = {"db.system.name": system, "db.operation.name": verb}
        if table:
            attributes["db.collection.name"] = table
        if many is not None:  # how many rows, never which
            attributes["db.operation.batch.size"] = many
        name = f"{verb} {table}" if table else verb
        return self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    @contextmanager
    def statement(self, sql: str, dialect: str) -> Iterator[hooks.SpanLike]:
        span = self._statement_span(sql, dialect, None)
        if span is None:
            yield hooks.NO_SPAN
            return
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    def watch_statements(self, engine: Any) -> None:
        """A span per statement the engine runs (an ``executemany`` batch is one)."""
        from sqlalchemy import event

        dialect = engine.dialect.name

        def before(_c: Any, _cur: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
            if ctx is not None:
                ctx.idp_span = self._statement_span(
                    statement, dialect, len(params) if many else None
                )

        def after(_c: Any, _cur: Any, _s: str, _p: Any, ctx: Any, _m: bool) -> None:
            span = getattr(ctx, "idp_span", None)
            if span is not None:
                ctx.idp_span = None
                span.end()

        def failed(exception_context: Any) -> None:
            ctx = exception_context.execution_context
            span = getattr(ctx, "idp_span", None) if ctx is not None else None
            if span is not None:
                ctx.idp_span = None
                _failed(span, exception_context.original_exception)
                span.end()

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "handle_error", failed)


def _failed(span: Any, exc: BaseException) -> None:
    """The exception's type only: its message may quote a value."""
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def _sampler() -> Any:
    """``OTEL_TRACES_SAMPLER`` when the operator sets one (the SDK reads it: None here), else
    every request. Not the SDK's default (``parentbased_always_on``), which obeys the sampled
    flag of the caller's ``traceparent``: any caller could send ``-00`` and leave no span of
    its requests (a credential-stuffing run kept out of the traces). A caller names the trace;
    the server decides what it records."""
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    return ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)


def _exporter(config: Any) -> Any:
    kind = config["OTEL_EXPORTER"]
    if kind == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        return InMemorySpanExporter()
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)  # beside the logs, not in a command's output
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = str(config["OTEL_ENDPOINT"]).rstrip("/")
    # empty: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else localhost:4318
    return OTLPSpanExporter(endpoint=f"{base}/v1/traces" if base else None)


def _processor(config: Any, exporter: Any) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if config["OTEL_EXPORTER"] == "memory":
        return SimpleSpanProcessor(exporter)  # a test reads the spans when the answer is back
    return BatchSpanProcessor(exporter)  # off the request path; flushed at exit
