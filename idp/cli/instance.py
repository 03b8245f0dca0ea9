"""``idp init`` and ``idp serve``: create an instance folder, and serve it."""

from __future__ import annotations

import os
import secrets
import sys

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
    from idp.keys.service import create_key

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
                created = create_key(db.session, svc.box, alg or svc.config["SIGNING_ALG"]).kid
            db.session.commit()
        except OperationalError as exc:
            raise click.ClickException(f"database unavailable: {exc.orig}") from None
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
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per worker (gthread); long polls of push devices need more than 1.",
)
@click.option("--access-log", is_flag=True, help="Log every request (path, status, time).")
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader.")
@pass_ctx
def serve(
    ctx: Ctx, host: str, port: int, workers: int, threads: int, access_log: bool, dev: bool
) -> None:
    """Serve idp with gunicorn (or Flask's reloader with --dev)."""
    if not (ctx.instance / "secret.key").exists() and not os.environ.get("IDP_SECRET_KEY"):
        raise click.ClickException(f"{ctx.instance} is not initialised: run `idp init` first")
    os.environ["IDP_INSTANCE"] = str(ctx.instance)
    if dev:
        from idp import create_app

        app = create_app(instance_path=ctx.instance)
        app.extensions["idp.services"].geoip.warn_if_unset()
        app.run(host=host, port=port, use_reloader=True)
        return
    # Sync workers: token issuance is CPU-bound (RS256) and threads would only contend for the
    # GIL (measured with bench/: same throughput, a worse p99 than one request at a time).
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}"]
    if threads > 1:
        argv += ["--worker-class", "gthread", "--threads", str(threads)]
    if access_log:
        # the path only (%(U)s): query strings can carry state and codes
        argv += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(M)sms']
    argv.append("idp.wsgi:app")
    os.execv(sys.executable, argv)  # noqa: S606 - argv is ours, not user input
