"""``GET /metrics``: the Prometheus exposition, off unless ``METRICS_ENABLED``.

Two ways to keep it from the public (checked at start-up by :mod:`idp.config`):

* ``METRICS_PORT`` (``idp serve --metrics-port``): gunicorn also listens there (under granian,
  :mod:`idp.ops.metrics_listener` does), the metrics answer only on that port, and that port
  answers nothing else. The port is the one the connection was accepted on (the socket's,
  never the ``Host`` header).
* ``METRICS_TOKEN``: ``Authorization: Bearer <token>``, compared in constant time; anything
  else is 401. Required when the metrics share the public port; honoured on the metrics port
  too when set.
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Flask, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from werkzeug.wrappers import Response

from idp.extensions import csrf
from idp.logstreams.lag import StreamLag

bp = Blueprint("metrics", __name__)
csrf.exempt(bp)
ENDPOINT = "metrics.scrape"


def init_app(app: Flask) -> None:
    """On the metrics port, nothing but the metrics."""
    if app.config["METRICS_ENABLED"] and app.config["METRICS_PORT"]:
        app.before_request(_metrics_port_only)


def local_port() -> int:
    """The port this request's connection was accepted on: gunicorn hands the WSGI app the
    socket; granian's and werkzeug's SERVER_PORT is their listener's (gunicorn's may come from
    ``Host``)."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        try:
            name = sock.getsockname()
        except OSError:
            return 0
        return int(name[1]) if isinstance(name, tuple) else 0  # a unix socket has no port
    try:
        return int(request.environ.get("SERVER_PORT") or 0)
    except ValueError:
        return 0


def _metrics_port_only() -> None:
    if local_port() == current_app.config["METRICS_PORT"] and request.endpoint != ENDPOINT:
        abort(404)


@bp.route("/metrics")
def scrape() -> Response:
    cfg = current_app.config
    if not cfg["METRICS_ENABLED"]:
        abort(404)
    if cfg["METRICS_PORT"] and local_port() != cfg["METRICS_PORT"]:
        abort(404)  # not on the public port: as if there were nothing here
    if cfg["METRICS_TOKEN"] and not _bearer_matches(cfg["METRICS_TOKEN"]):
        resp = Response("A valid bearer token is required.\n", 401, mimetype="text/plain")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        resp.headers["Cache-Control"] = "no-store"
        return resp
    resp = Response(exposition(current_app._get_current_object()), mimetype=CONTENT_TYPE_LATEST)  # type: ignore[attr-defined]
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _bearer_matches(token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def exposition(app: Flask) -> bytes:
    """Every process's values (multiprocess mode) or this one's, then the log streams' lag."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    lag = CollectorRegistry()
    lag.register(StreamLag(app))
    return generate_latest(registry) + generate_latest(lag)
