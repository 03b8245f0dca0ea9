"""idp: a self-hosted OpenID Connect / OAuth 2.1 authorization server."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Request, current_app, g, jsonify, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from idp.config import load_settings
from idp.keys.service import NoSigningKeyError
from idp.ops import jsonlog
from idp.tenant.branding import csp

__all__ = ["create_app"]

log = logging.getLogger("idp")


def default_instance_path() -> Path:
    return Path(os.environ.get("IDP_INSTANCE", "instance")).resolve()


def create_app(
    config: dict[str, Any] | None = None, instance_path: str | Path | None = None
) -> Flask:
    """Application factory. ``config`` overrides everything (tests)."""
    path = Path(instance_path) if instance_path else default_instance_path()
    app = Flask(__name__, instance_path=str(path.resolve()), instance_relative_config=True)
    settings = load_settings(path, config)
    if not settings["SECRET_KEY"]:
        secret_file = path / "secret.key"
        if not secret_file.exists():
            raise RuntimeError(f"{path} is not initialised: run `idp --instance {path} init`")
        settings["SECRET_KEY"] = secret_file.read_text().strip()
    app.config.update(settings)
    _configure_flask(app)
    _template_filters(app)
    _configure_logging()
    jsonlog.init_app(app)  # LOG_FORMAT=json
    _init_extensions(app)
    _register_blueprints(app)
    _register_error_handlers(app)
    # the CSP of responses that render no page; a page sends its brand's (idp.tenant.branding)
    app.extensions["idp.csp"] = csp(app.config["BRAND_LOGO_URL"])
    app.after_request(_security_headers)
    return app


def _template_filters(app: Flask) -> None:
    """Epoch seconds on the pages: ``iso_utc`` for ``<time datetime>``, ``when_utc`` to read."""

    def iso_utc(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def when_utc(epoch: int) -> str:
        moment = datetime.fromtimestamp(epoch, UTC)
        return f"{moment.day} {moment:%b %Y, %H:%M} UTC"

    app.add_template_filter(iso_utc)
    app.add_template_filter(when_utc)


def _configure_flask(app: Flask) -> None:
    https = app.config["ISSUER"].startswith("https://")
    app.session_interface = _BrowserOnlySessions()
    app.config.update(
        SESSION_COOKIE_NAME="__Host-idp_csrf" if https else "idp_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
    )


class _BrowserOnlySessions(SecureCookieSessionInterface):
    """No cookie session on machine endpoints: they never use one, and opening it costs a
    signing-serializer setup on every token request."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(_MACHINE_PATHS):
            return None
        return super().open_session(app, request)


def _configure_logging() -> None:
    # Authlib logs issued tokens at DEBUG (SECURITY.md §3.5): never let that through.
    logging.getLogger("authlib").setLevel(logging.WARNING)


def _init_extensions(app: Flask) -> None:
    from idp.actions import grants as grant_chains
    from idp.actions import token_exchange
    from idp.actions.engine import ActionsEngine
    from idp.console.auth import console_clients
    from idp.core.crypto import SecretBox
    from idp.core.mail import Mailer
    from idp.core.net import parse_proxies
    from idp.core.versions import from_config as versions_from_config
    from idp.extensions import Services, csrf, db
    from idp.geo.service import from_config as geoip_from_config
    from idp.i18n import init_app as i18n_init
    from idp.identity.policy import PasswordPolicy
    from idp.identity.service import Passwords
    from idp.keys.service import KeyRing
    from idp.oauth import server
    from idp.oauth.clients import ClientDirectory
    from idp.oauth.token_reuse import TokenReuse
    from idp.oauth.tokens import TokenIssuer
    from idp.ops import metrics as ops_metrics
    from idp.ops import tracing as ops_tracing
    from idp.protection.service import Shields
    from idp.protection.stores import from_config as counters_from_config
    from idp.tenant import branding, protection, settings

    cfg = app.config
    geoip = geoip_from_config(cfg)  # first: a bad IDP_GEOIP_DB fails before anything starts
    db.init_app(app)
    csrf.init_app(app)
    versions = versions_from_config(cfg, Path(app.instance_path))  # caches' invalidation
    app.extensions["idp.versions"] = versions
    settings.init_app(app, lambda: db.session, versions)  # the tenant settings the API changes
    branding.init_app(app)
    i18n_init(app)  # the pages' language (ui_locales, Accept-Language)
    box = SecretBox(cfg["SECRET_KEY"])
    keys = KeyRing(box, cfg["KEY_CACHE_SECONDS"], lambda: db.session, versions)
    app.extensions["idp.services"] = Services(
        config=dict(cfg),
        box=box,
        keys=keys,
        clients=ClientDirectory(
            box,
            cfg["CLIENT_CACHE_SECONDS"],
            lambda: db.session,
            builtins=console_clients(cfg["ISSUER"], box),
            versions=versions,
            max_age=cfg["CLIENT_CACHE_MAX_SECONDS"],
        ),
        issuer=TokenIssuer(keys, dict(cfg)),
        passwords=Passwords.create(
            cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_PARALLELISM"]
        ),
        token_reuse=TokenReuse(cfg["CC_TOKEN_REUSE_SECONDS"], versions, lambda: keys.version),
        shields=Shields.from_config(
            counters_from_config(cfg["REDIS_URL"], lambda: db.session),
            cfg,
            live=protection.policy,  # the tenant settings, over cfg's values
        ),
        trusted_proxies=parse_proxies(cfg["TRUSTED_PROXIES"]),
        mailer=Mailer(dict(cfg), Path(app.instance_path) / "outbox"),
        policy=PasswordPolicy(cfg["PASSWORD_MIN_LENGTH"], cfg["PASSWORD_MIN_SCORE"]),
        actions=ActionsEngine(dict(cfg), box, Path(app.instance_path), db.transaction, versions),
        geoip=geoip,
    )
    server.init_app(app)
    ops_metrics.init_app(app)  # off unless METRICS_ENABLED
    ops_tracing.init_app(app)  # off unless OTEL_ENABLED or an OTLP endpoint variable
    grant_chains.init_app(app)
    token_exchange.init_app(app)  # RFC 8693, on while a custom-token-exchange action is bound


def _register_blueprints(app: Flask) -> None:
    from idp.console.routes import bp as console_bp
    from idp.flows import (  # noqa: F401 - register their routes on flows.bp
        account,
        authorize,
        connection,
        consent,
        device,
        linking,
        logout,
        password,
        saml,
        saml_logout,
        signup,
    )
    from idp.flows.views import bp as flows_bp
    from idp.health import bp as health_bp
    from idp.management.views import bp as management_bp
    from idp.mfa.account import bp as mfa_account_bp
    from idp.mfa.account_enrol import bp as mfa_account_enrol_bp
    from idp.mfa.phone_views import bp as mfa_phone_bp
    from idp.mfa.push_views import bp as mfa_push_bp
    from idp.mfa.views import bp as mfa_bp
    from idp.mfa.webauthn_views import bp as mfa_webauthn_bp
    from idp.mfa.webpush_views import bp as mfa_webpush_bp
    from idp.oauth import device_views  # noqa: F401 - registers /oauth/device/code
    from idp.oauth.par import bp as par_bp
    from idp.oauth.registration_views import bp as registration_bp
    from idp.oauth.views import bp as oauth_bp
    from idp.ops import views as ops_views

    app.register_blueprint(oauth_bp)
    app.register_blueprint(registration_bp)  # RFC 7591 / 7592, 404 unless enabled
    app.register_blueprint(par_bp)  # RFC 9126
    app.register_blueprint(flows_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(mfa_bp)
    app.register_blueprint(mfa_webauthn_bp)
    app.register_blueprint(mfa_push_bp)
    app.register_blueprint(mfa_webpush_bp)  # the web authenticator (Web Push)
    app.register_blueprint(mfa_phone_bp)
    app.register_blueprint(mfa_account_bp)
    app.register_blueprint(mfa_account_enrol_bp)
    app.register_blueprint(management_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(ops_views.bp)  # /metrics, 404 unless METRICS_ENABLED
    ops_views.init_app(app)


_MACHINE_PATHS = ("/oauth/", "/userinfo", "/.well-known/", "/health", "/api/")


def _wants_json() -> bool:
    return request.path.startswith(_MACHINE_PATHS)


def _register_error_handlers(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    from idp.flows.pages import error_page

    @app.errorhandler(IntegrityError)
    def _conflict(exc: Exception) -> Response:
        """Two requests raced to create the same row: nothing was written; a retry works."""
        log.warning("integrity conflict on %s", request.path)
        from idp.extensions import db

        db.session.rollback()
        if _wants_json():
            resp: Response = jsonify(
                {"error": "invalid_request", "error_description": "Conflicting request; retry."}
            )
            resp.status_code = 409
            resp.headers["Cache-Control"] = "no-store"
            return resp
        return error_page("Please try again", "Another request changed this at the same time.", 409)

    def _unavailable() -> Response:
        """503 with Retry-After: the OAuth error for machines, the API's problem, a page for
        people; never cacheable (RFC 6749 §5.1)."""
        resp: Response
        if request.path.startswith("/api/v2/"):
            from idp.management.base import problem

            resp = problem(503, "The service is temporarily unavailable; retry.")
        elif _wants_json():
            code = (
                "server_error" if request.path.startswith("/oauth/") else "temporarily_unavailable"
            )
            resp = jsonify({"error": code, "error_description": "The service is unavailable."})
            resp.status_code = 503
        else:
            resp = error_page("Temporarily unavailable", "Please try again in a moment.", 503)
        resp.headers["Retry-After"] = "5"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _rollback() -> None:
        from idp.extensions import db

        try:  # nothing half done: a code claimed before the failure stays unclaimed
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is already gone
            log.debug("rollback after the failure also failed")

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database_down(exc: Exception) -> Response:
        """SECURITY.md S-FT-05: a fast 503 with Retry-After, no stack trace, nothing half done.
        The log names the cause by the driver's code (SQLITE_FULL, SQLITE_READONLY, a
        SQLSTATE), never by its message, which may quote the statement's values."""
        orig = getattr(exc, "orig", None)
        cause = getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)
        log.error("database unavailable: %s (%s)", type(exc).__name__, cause or "no code")
        _rollback()
        return _unavailable()

    @app.errorhandler(NoSigningKeyError)
    def _no_signing_key(exc: Exception) -> Response:
        """S-FT-08: no key signs now (e.g. the clock moved back before the only key's
        activation): no token, a 503 the client retries, the reason in the log."""
        log.error("%s", exc)
        _rollback()
        return _unavailable()

    if app.config["REDIS_URL"]:
        # Only an instance with Redis can raise its errors, and redis-py is ~9 MB a process
        # (with the OpenTelemetry SDK it imports): not imported without REDIS_URL (issue 17).
        from redis.exceptions import RedisError

        @app.errorhandler(RedisError)
        def _redis_down(exc: Exception) -> Response:
            """Redis is needed here (a DPoP proof's single use) and cannot be asked: fail
            closed. Attack protection's counters fail over to the database instead
            (idp.protection)."""
            log.error("Redis unavailable: %s", type(exc).__name__)
            _rollback()
            return _unavailable()

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Response:
        return error_page(
            "Form expired",
            "The form was missing its security token. Go back, reload the page and try again.",
            400,
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        code = exc.code or 500
        if request.path.startswith("/api/v2/"):  # no route matched: still Auth0's shape
            from idp.management.base import problem

            return problem(code, exc.description or exc.name)
        if _wants_json():
            resp = jsonify(
                {
                    "error": "invalid_request" if code < 500 else "server_error",
                    "error_description": exc.description or exc.name,
                }
            )
            resp.status_code = code
            return resp
        return error_page(exc.name, exc.description or exc.name, code)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.path)
        if _wants_json():
            resp = jsonify({"error": "server_error", "error_description": "Internal error."})
            resp.status_code = 500
            return resp
        return error_page("Something went wrong", "Please try again later.", 500)


# what _security_headers adds to a response that does not have them
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)


def _security_headers(resp: Response) -> Response:
    """BCP §4.16 clickjacking, §4.2.4 referrer; strict CSP on every page. Each header is set
    unless the response has it (``setdefault``), from one pass over the response's headers:
    this runs on every response, the token endpoint's included."""
    headers = resp.headers
    have = {key.lower() for key, _value in headers}
    for name, value in _SECURITY_HEADERS:
        if name.lower() not in have:
            headers.add(name, value)
    ctx = g._get_current_object()  # one context look-up for both reads
    if "content-security-policy" not in have:
        # a rendered page's CSP admits its logo's host (idp.tenant.branding)
        headers.add("Content-Security-Policy",
                    ctx.get("idp_csp") or current_app.extensions["idp.csp"])  # fmt: skip
    if request.is_secure and "strict-transport-security" not in have:
        headers.add("Strict-Transport-Security", "max-age=31536000")
    request_id = ctx.get("idp_request_id")
    if request_id and "x-request-id" not in have:
        # set when Actions ran: their execution records carry the same id
        headers.add("X-Request-Id", request_id)
    return resp
