"""Prometheus metrics, off unless ``METRICS_ENABLED`` (issue 17, Observability).

Under ``idp serve`` the workers are separate processes, so prometheus_client runs in its
multiprocess mode: ``idp serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at
``instance/prometheus`` (emptied at each start), each process writes its values to memory-mapped
files there, a scrape adds them up, and the master drops a dead worker's live gauges
(``idp.ops.gunicorn_conf``). Without that variable (``--dev``, tests in one process) the
process's own registry is served.

Every label is bounded: the Flask endpoint name (never the raw path), the status code, grant
types, login reasons and MFA factors from a fixed vocabulary ("other" beyond it), trigger ids,
and the names of the actions and log streams an operator created. The counters are fed where
the events already happen: one request hook (requests, token responses), the tenant log's
single writer (logins, MFA), the actions engine (executions), the sandbox pool and the
database pool's events.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, current_app, g, has_app_context, request
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine, event
from werkzeug.wrappers import Response

REQUESTS = Counter(
    "idp_http_requests", "HTTP requests answered, by Flask endpoint and status.",
    ["endpoint", "status"],
)  # fmt: skip
REQUEST_SECONDS = Histogram(
    "idp_http_request_duration_seconds", "Time to answer a request, by Flask endpoint.",
    ["endpoint"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)  # fmt: skip
TOKENS = Counter("idp_tokens_issued", "Token responses (200) by grant type.", ["grant_type"])
LOGINS = Counter(
    "idp_logins", "Login outcomes: success, or failure by reason.", ["outcome", "reason"]
)
MFA = Counter("idp_mfa", "Second-factor outcomes by factor.", ["factor", "outcome"])
ACTIONS = Counter(
    "idp_action_executions", "Action executions by trigger, action and outcome.",
    ["trigger", "action", "outcome"],
)  # fmt: skip
ACTION_SECONDS = Histogram(
    "idp_action_duration_seconds", "Time of one action execution, by trigger and action.",
    ["trigger", "action"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0),
)  # fmt: skip
ZYGOTES = Gauge("idp_sandbox_zygotes", "Warm sandbox zygotes running.", multiprocess_mode="livesum")
SANDBOX_BUSY = Gauge(
    "idp_sandbox_busy", "Action executions running in the sandboxes now.",
    multiprocess_mode="livesum",
)  # fmt: skip
DB_CHECKED_OUT = Gauge(
    "idp_db_pool_checked_out", "Database connections checked out of the pools now.",
    multiprocess_mode="livesum",
)  # fmt: skip

GRANT_TYPES = frozenset({
    "authorization_code", "refresh_token", "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
})  # fmt: skip
FACTORS = frozenset({"totp", "webauthn", "email", "phone", "sms", "voice", "push", "recovery"})
LOGIN_REASONS = frozenset({"user_blocked", "passkey_failed"})
# tenant log event type -> (outcome, the reason when the event names none we know)
LOGIN_EVENTS = {
    "login.success": ("success", ""),
    "login.failure": ("failure", "wrong_credentials"),
    "login.blocked": ("failure", "account_blocked"),
    "connection.login_failure": ("failure", "connection"),
}
MFA_EVENTS = {"mfa.success": "success", "mfa.failure": "failure"}
UNMATCHED = "unmatched"  # no route: one label for every unknown path


def init_app(app: Flask) -> None:
    """Count requests and watch the database pool, when ``METRICS_ENABLED``."""
    if not app.config["METRICS_ENABLED"]:
        return
    app.before_request(_started)
    app.after_request(_answered)
    _watch_pool(app.extensions["idp.db"][0])


def _on() -> bool:
    return has_app_context() and bool(current_app.config.get("METRICS_ENABLED"))


def _started() -> None:
    g.idp_metrics_started = time.perf_counter()


def _answered(resp: Response) -> Response:
    endpoint = request.url_rule.endpoint if request.url_rule is not None else UNMATCHED
    REQUESTS.labels(endpoint, str(resp.status_code)).inc()
    started = g.get("idp_metrics_started")
    if started is not None:
        REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
    if endpoint == "oauth.token" and resp.status_code == 200:
        TOKENS.labels(grant_label(request.form.get("grant_type"))).inc()
    return resp


def grant_label(grant_type: str | None) -> str:
    return grant_type if grant_type in GRANT_TYPES else "other"


def observe_event(type_: str, details: dict[str, Any] | None) -> None:
    """A tenant log event was written (``idp.audit.service.record``): count logins and MFA."""
    if type_ not in LOGIN_EVENTS and type_ not in MFA_EVENTS:
        return
    if not _on():
        return
    details = details or {}
    if type_ in LOGIN_EVENTS:
        outcome, default = LOGIN_EVENTS[type_]
        reason = details.get("reason")
        LOGINS.labels(outcome, reason if reason in LOGIN_REASONS else default).inc()
        return
    factor = details.get("factor")
    MFA.labels(factor if factor in FACTORS else "other", MFA_EVENTS[type_]).inc()


def action_ran(trigger: str, action: str, outcome: str, seconds: float) -> None:
    """One execution of an action (``idp.actions.engine``); names are the operator's, few."""
    ACTIONS.labels(trigger, action, outcome).inc()
    ACTION_SECONDS.labels(trigger, action).observe(seconds)


def sandbox_state(zygotes: int, busy: int) -> None:
    """This process's sandbox pool (``idp.actions.runner.pool``); a scrape sums the live ones."""
    ZYGOTES.set(zygotes)
    SANDBOX_BUSY.set(busy)


def _watch_pool(engine: Engine) -> None:
    def checkout(*_: Any) -> None:
        DB_CHECKED_OUT.inc()

    def checkin(*_: Any) -> None:
        DB_CHECKED_OUT.dec()

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
