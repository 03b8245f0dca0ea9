"""``idp init`` and ``idp serve``: create an instance folder, and serve it."""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from idp.cli.context import Command, Ctx, pass_ctx

CONFIG_TEMPLATE = """\
# idp instance configuration. Every key can be overridden by an IDP_<KEY> environment variable.
# issuer = "http://localhost:5000"
# database_url = ""          # empty: SQLite in this folder
# access_token_ttl = 3600
# auth_code_ttl = 60
# refresh_grace_seconds = 10
"""


@click.command(cls=Command)
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), default=None)
@pass_ctx
def init(ctx: Ctx, alg: str | None) -> None:
    """Create the instance folder (secret, config), migrate the database, create a signing key."""
    from idp import create_app
    from idp.core import migrate
    from idp.extensions import db, services
    from idp.keys.models import SigningKey
    from idp.keys.service import create_keys
    from idp.mfa.webpush import ensure_vapid_key

    ctx.instance.mkdir(parents=True, exist_ok=True)
    secret_file = ctx.instance / "secret.key"
    if not secret_file.exists() and not os.environ.get("IDP_SECRET_KEY"):
        secret_file.write_text(secrets.token_urlsafe(48) + "\n")
        secret_file.chmod(0o600)
    config_file = ctx.instance / "config.toml"
    if not config_file.exists():
        config_file.write_text(CONFIG_TEMPLATE)
    try:
        app = create_app(instance_path=ctx.instance)
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    with app.app_context():
        try:
            migrate.upgrade(db.engine)
            created = None
            if db.session.query(SigningKey).count() == 0:
                svc = services()
                created = create_keys(db.session, svc.box, alg or svc.config["SIGNING_ALG"]).kid
            # the Web Push (VAPID, RFC 8292) key of push approval; kept if there is one
            ensure_vapid_key(db.session, services().box)
            db.session.commit()
        except OperationalError as exc:
            raise click.ClickException(f"database unavailable: {exc.orig}") from None
        finally:
            # as Ctx.session does: no pooled connection outlives the command (run in-process, a
            # pooled SQLite connection was left to the garbage collector, which CPython 3.13
            # reports as a ResourceWarning: "unclosed database")
            db.session.close()
            db.engine.dispose()
    ctx.emit(
        {"instance": str(ctx.instance), "signing_key_created": created},
        f"instance ready at {ctx.instance}" + (f" (signing key {created})" if created else ""),
    )


@click.command(cls=Command)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 64),
    help="Python threads per worker: granian 2 (a client sending its body slowly holds one, "
    "the other serves the worker's queue), gunicorn 1 (sync; more: gthread).",
)
@click.option("--access-log", is_flag=True, help="Log every request (path, status, time).")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Turn metrics on and serve /metrics on this port only (same host).",
)
@click.option(
    "--graceful-timeout",
    default=30,
    show_default=True,
    type=click.IntRange(1, 3600),
    help="On SIGTERM, seconds requests in flight have to finish.",
)
@click.option(
    "--timeout",
    default=30,
    show_default=True,
    type=click.IntRange(0, 3600),
    help="Seconds a worker may spend on one request before it is replaced (0: no limit).",
)
@click.option(
    "--server",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    show_default=True,
    help="The WSGI server: granian (HTTP in Rust, keep-alive) or gunicorn's sync workers.",
)
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader.")
@pass_ctx
def serve(
    ctx: Ctx,
    host: str,
    port: int,
    workers: int,
    threads: int | None,
    access_log: bool,
    metrics_port: int | None,
    graceful_timeout: int,
    timeout: int,
    server: str,
    dev: bool,
) -> None:
    """Serve idp with granian or gunicorn (or Flask's reloader with --dev)."""
    if not (ctx.instance / "secret.key").exists() and not os.environ.get("IDP_SECRET_KEY"):
        raise click.ClickException(f"{ctx.instance} is not initialised: run `idp init` first")
    os.environ["IDP_INSTANCE"] = str(ctx.instance)
    if metrics_port is not None:
        if metrics_port == port:
            raise click.ClickException("--metrics-port must differ from --port")
        os.environ["IDP_METRICS_ENABLED"] = "1"
        os.environ["IDP_METRICS_PORT"] = str(metrics_port)
    settings = _settings_or_refuse(ctx)  # metrics on the public port without a token: refused
    if dev:
        from idp import create_app

        app = create_app(instance_path=ctx.instance)
        app.extensions["idp.services"].geoip.warn_if_unset()
        app.run(host=host, port=port, use_reloader=True)
        return
    if threads is None:  # the defaults measured in bench/README.md ("The server")
        threads = 2 if server == "granian" else 1
    if server == "granian":
        argv = _granian_argv(host, port, workers, threads, access_log, graceful_timeout, settings)
        argv += ["--timeout", str(timeout)]
    else:
        argv = _gunicorn_argv(host, port, workers, threads, access_log, graceful_timeout, settings)
        argv[-1:-1] = ["--timeout", str(timeout)]  # before the app (gunicorn's, same meaning)
    # one glibc malloc arena: with one per thread, each of a worker's threads kept the 19 MiB
    # of the last argon2id hash it ran (idp.identity.service.Passwords); no cost measured
    os.environ.setdefault("MALLOC_ARENA_MAX", "1")
    os.environ["IDP_LOG_FORMAT"] = settings["LOG_FORMAT"]
    if access_log:
        os.environ["IDP_ACCESS_LOG"] = "1"
    if settings["METRICS_ENABLED"]:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir(ctx))
    os.execv(sys.executable, argv)  # noqa: S606 - argv is ours, not user input


def _gunicorn_argv(
    host: str, port: int, workers: int, threads: int, access_log: bool, graceful_timeout: int,
    settings: dict[str, Any],
) -> list[str]:  # fmt: skip
    # Sync workers: token issuance is CPU-bound (RS256) and threads would only contend for the
    # GIL (measured with bench/: same throughput, a worse p99 than one request at a time).
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}"]
    if threads > 1:
        argv += ["--worker-class", "gthread", "--threads", str(threads)]
    if access_log:
        # the path only (%(U)s): query strings can carry state and codes
        argv += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(M)sms']
    # server hooks: metrics of exited workers, a worker's last flush, JSON logs (idp.ops)
    argv += ["-c", "python:idp.ops.gunicorn_conf", "--graceful-timeout", str(graceful_timeout)]
    if settings["METRICS_ENABLED"] and settings["METRICS_PORT"]:
        argv += ["--bind", f"{host}:{settings['METRICS_PORT']}"]
    return [*argv, "idp.wsgi:app"]


def _granian_argv(
    host: str, port: int, workers: int, threads: int, access_log: bool, graceful_timeout: int,
    settings: dict[str, Any],
) -> list[str]:  # fmt: skip
    """granian's WSGI workers with gunicorn's behaviour (idp.ops.granian_serve says how)."""
    if importlib.util.find_spec("granian") is None:
        raise click.ClickException(
            "granian is not installed (pip install granian), or --server gunicorn"
        )
    argv = [sys.executable, "-m", "idp.ops.granian_serve", "--bind", f"{host}:{port}"]
    argv += ["--workers", str(workers), "--threads", str(threads)]
    argv += ["--graceful-timeout", str(graceful_timeout)]
    if access_log:
        argv.append("--access-log")
    if settings["METRICS_ENABLED"] and settings["METRICS_PORT"]:
        argv += ["--metrics-bind", f"{host}:{settings['METRICS_PORT']}"]
    return argv


def _settings_or_refuse(ctx: Ctx) -> dict[str, Any]:
    """The instance's settings, checked before anything starts (a refusal says why)."""
    from idp.config import load_settings

    try:
        return load_settings(ctx.instance)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _fresh_metrics_dir(ctx: Ctx) -> Path:
    """prometheus_client's multiprocess files, emptied at each start: a previous run's
    counters would otherwise be added to this one's."""
    folder = ctx.instance / "prometheus"
    folder.mkdir(mode=0o700, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder
