"""Spans around the costly steps of a request (issue 17, OpenTelemetry), free when tracing is off.

The code calls :func:`span` where time goes (the password hash, each action, token signing,
outbound HTTP) and :func:`inject` where a request leaves for another service. Until
:mod:`idp.ops.tracing` turns tracing on for an app of this process, :func:`span` returns one
shared object that does nothing, after a single read of a module global: a server without
tracing (the default, or without the ``otel`` extra installed) pays that and no more. This module
imports nothing from OpenTelemetry, which is an optional dependency.

The tracer is the app's own (``app.extensions["idp.tracing"]``), looked up only once some app
traces: several apps in one process (the tests) each keep their spans to themselves, and code
running outside a request (background threads, the CLI) makes no span.

Attributes are names and numbers chosen by the code (a trigger, an action's name and version, a
verb and a table, an algorithm), never a value that came with a request: no password, token,
secret, cookie, parameter or event content.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

Attributes = Mapping[str, str | bool | int | float]


class SpanLike(Protocol):
    def set_attribute(self, key: str, value: Any) -> Any: ...


class _NoSpan:
    """What :func:`span` gives when tracing is off: enters, exits and records nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None


NO_SPAN = _NoSpan()


class Tracing(Protocol):
    """An app's tracing, as :mod:`idp.ops.tracing` builds it."""

    def span(
        self, name: str, attributes: Attributes | None, client: bool
    ) -> AbstractContextManager[SpanLike]: ...

    def statement(self, sql: str, dialect: str) -> AbstractContextManager[SpanLike]: ...

    def inject(self, headers: dict[str, str]) -> None: ...


# Some app of this process traces (set once by idp.ops.tracing): until then every call here is
# a no-op. A statement on the login's hot path tests it itself (``if tracing.ON``), sparing the
# call and the ``with`` (0.4 us) on a 20 us statement.
ON = False


def enable() -> None:
    """An app of this process traces from now on (called by ``idp.ops.tracing.init_app``)."""
    global ON  # noqa: PLW0603 - a module global is the cheapest read
    ON = True


def _current() -> Tracing | None:
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    tracing: Tracing | None = current_app.extensions.get("idp.tracing")
    return tracing


def span(
    name: str, attributes: Attributes | None = None, *, client: bool = False
) -> AbstractContextManager[SpanLike]:
    """A span named ``name``, the current one's child, for the ``with`` block (``client``: a
    call to another service). The no-op object when this app does not trace."""
    if not ON:
        return NO_SPAN
    tracing = _current()
    if tracing is None:
        return NO_SPAN
    return tracing.span(name, attributes, client)


def statement(sql: str, dialect: str) -> AbstractContextManager[SpanLike]:
    """A span for one SQL statement sent past SQLAlchemy's engine (:mod:`idp.core.fastsql`),
    like the engine's own: its verb and table only, and only inside a traced request."""
    if not ON:
        return NO_SPAN
    tracing = _current()
    if tracing is None:
        return NO_SPAN
    return tracing.statement(sql, dialect)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the current span's W3C ``traceparent`` (Trace Context §3.2) when this
    app traces, so the service called joins the trace; otherwise ``headers`` untouched."""
    if not ON:
        return headers
    tracing = _current()
    if tracing is not None:
        tracing.inject(headers)
    return headers
