"""``idp log-streams ...``: send every tenant log event to an HTTPS webhook (create, list,
pause, resume, delete). The signing secret is printed once, by ``create``; the
``Authorization`` value is write-only (``--authorization -`` reads it from stdin)."""

from __future__ import annotations

import sys
from typing import Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table

STDIN = "-"
COLUMNS = ["id", "name", "status", "endpoint", "checkpoint", "error"]


def _line(view: dict[str, Any]) -> dict[str, Any]:
    error = view["last_error"]["message"] if view["last_error"] else ""
    return view | {"endpoint": view["sink"]["httpEndpoint"], "error": error}


def _show(view: dict[str, Any]) -> str:
    return table([_line(view)], COLUMNS)


@click.group("log-streams", cls=Group)
def log_streams() -> None:
    """Log streams: every tenant log event, in order, to an HTTPS webhook (JSON lines,
    signed with HMAC-SHA256 in X-Idp-Signature). Hosts must be on LOG_STREAM_HOSTS."""


@log_streams.command("create")
@click.option("--name", required=True)
@click.option("--endpoint", required=True, help="The webhook: an https URL.")
@click.option(
    "--authorization",
    default=None,
    help="Sent as the Authorization header (e.g. 'Bearer TOKEN'); '-' reads it from stdin.",
)
@click.option("--start-from", type=click.IntRange(0), default=None,
              help="Send the events after this log id (default: from now on).")  # fmt: skip
@pass_ctx
def create(
    ctx: Ctx, name: str, endpoint: str, authorization: str | None, start_from: int | None
) -> None:
    """Create a stream; prints its signing secret once (receivers verify X-Idp-Signature)."""
    from flask import current_app

    from idp.extensions import services
    from idp.logstreams import service

    if authorization == STDIN:
        authorization = sys.stdin.read().rstrip("\r\n")
        if not authorization:
            raise click.ClickException("--authorization -: nothing on stdin")
    with ctx.session() as s:
        stream, secret = service.create(
            s, services().box, current_app.config, name=name, endpoint=endpoint,
            authorization=authorization, start_from=start_from,
        )  # fmt: skip
        view = service.view(stream)
    ctx.emit(view | {"signing_secret": secret},
             lambda: f"{_show(view)}\nsigning secret (shown once): {secret}")  # fmt: skip


@log_streams.command("list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """Log streams with their status, checkpoint and last error."""
    from idp.logstreams import service

    with ctx.session() as s:
        views = [service.view(x) for x in service.list_streams(s)]
    ctx.emit(views, lambda: table([_line(v) for v in views], COLUMNS))


def _set_status(ctx: Ctx, ident: str, status: str) -> None:
    from flask import current_app

    from idp.extensions import services
    from idp.logstreams import service

    with ctx.session() as s:
        stream = service.update(s, services().box, current_app.config,
                                service.get(s, ident), status=status)  # fmt: skip
        view = service.view(stream)
    ctx.emit(view, lambda: _show(view))


@log_streams.command("pause")
@click.argument("ident", metavar="ID_OR_NAME")
@pass_ctx
def pause(ctx: Ctx, ident: str) -> None:
    """Stop sending; the checkpoint stays where it is."""
    _set_status(ctx, ident, "paused")


@log_streams.command("resume")
@click.argument("ident", metavar="ID_OR_NAME")
@pass_ctx
def resume(ctx: Ctx, ident: str) -> None:
    """Send again from the checkpoint (a paused or suspended stream)."""
    _set_status(ctx, ident, "active")


@log_streams.command("delete")
@click.argument("ident", metavar="ID_OR_NAME")
@pass_ctx
def delete(ctx: Ctx, ident: str) -> None:
    """Delete a stream (what it has not sent yet stays in the tenant log)."""
    from idp.logstreams import service

    with ctx.session() as s:
        stream = service.get(s, ident)
        view = service.view(stream)
        service.delete(s, stream)
    ctx.emit({"deleted": view["id"]}, f"deleted {view['name']} ({view['id']})")
