"""Structured logs (``LOG_FORMAT=json``, ``IDP_LOG_FORMAT=json``): one JSON object per line with
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and ``request_id``, the id the
request's Actions execution records and tenant log events carry (and its ``X-Request-Id``
answer); null outside a request. An exception adds ``exception`` (its traceback).

Nothing is added to what is logged: a message holds what the text format shows, so the rules
that keep tokens and secrets out of the logs (SECURITY.md §3.5) hold for both formats; the
format only makes each line one parseable object (a message with newlines stays one line).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, has_request_context


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(),
            "pid": record.process,
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _request_id() -> str | None:
    if not has_request_context():
        return None
    from idp.core.net import request_id

    return request_id()  # made on first use, then on the records and X-Request-Id alike


def init_app(app: Flask) -> None:
    """Outside a server (``idp serve --dev``, ``idp`` commands), log JSON from the root logger;
    under ``idp serve`` the server's log configuration (:func:`gunicorn_logconfig`, which
    granian's is built from too) did it."""
    if app.config["LOG_FORMAT"] != "json":
        return
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def gunicorn_logconfig(access_log: bool) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own loggers and the root (idp's) through JSON.
    The access log only when asked for (``idp serve --access-log``): with a logging
    configuration gunicorn would otherwise log every request line, query strings included."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
            "gunicorn.access": {
                "level": "INFO" if access_log else "CRITICAL",
                "handlers": ["json"],
                "propagate": False,
            },
        },
    }
