"""``idp demo`` (seed the demo app, API and user; print where everything is) and ``idp demo-app``
(serve the demo relying party on its own port). ``make run`` runs both beside ``idp serve``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import click

from idp.cli.context import Command, Ctx, pass_ctx


@click.command(cls=Command)
@click.option(
    "--app-url",
    envvar="IDP_DEMO_APP_URL",
    default=None,
    help="Where `idp demo-app` listens [default: the issuer's loopback host, next port].",
)
@pass_ctx
def demo(ctx: Ctx, app_url: str | None) -> None:
    """Seed the demo app, API and user (once) and print where they are.

    Every run registers the demo app's redirect URIs for --app-url and keeps the data; the
    password and client secret are printed only when made, and kept in <instance>/demo.json.
    """
    from idp.demo import seed
    from idp.extensions import services

    with ctx.session() as s:
        url = app_url or seed.default_app_url(services().config["ISSUER"])
        data = seed.seed(s, ctx.instance, url)
    ctx.emit(data, lambda: seed.describe(data))


@click.command("demo-app", cls=Command)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="[default: the port of the app URL]")
@pass_ctx
def demo_app(ctx: Ctx, host: str, port: int | None) -> None:
    """Serve the demo relying party (run `idp demo` first)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from idp.demo import seed
    from idp.demo.app import create_demo_app

    config = seed.read_credentials(ctx.instance)
    if not config.get("client_id") or not config.get("app_url"):
        raise click.ClickException(
            f"no demo app registered in {ctx.instance}: run `idp --instance {ctx.instance} demo`"
        )

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            """No access log: the callback's query string carries the code."""

    listen = port or urlsplit(config["app_url"]).port or 5001
    try:
        server = make_server(host, listen, create_demo_app(config), threaded=True,
                             request_handler=Quiet)  # fmt: skip
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{listen}: {exc.strerror}") from None
    ctx.emit(
        {"app_url": config["app_url"], "issuer": config["issuer"], "listen": f"{host}:{listen}"},
        f"demo app at {config['app_url']} (on {host}:{listen}; idp at {config['issuer']})",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
