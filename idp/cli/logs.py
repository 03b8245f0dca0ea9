"""``idp logs``: tenant log events, or a live tail of them with ``--follow``.

``--from ID`` reads the events after that log id, oldest first (Auth0's checkpoint paging);
``--follow`` then keeps polling the table for new ones (``idp.logstreams.reader.after``: a
read never steps past an id still committing, so the tail skips nothing) until Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from idp.cli.context import Command, Ctx, pass_ctx


def _line(e: Any) -> str:
    return f"{e.id}  {e.time}  {e.type:<18} user={e.user_id or '-'} ip={e.ip or '-'}  " + (
        e.description
    )


def _as_dict(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "time": e.time,
        "user_id": e.user_id,
        "client_id": e.client_id,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "description": e.description,
        "details": e.details,
    }


@click.command("logs", cls=Command)
@click.option("--type", "type_", default=None, help="Event type, e.g. login.failure.")
@click.option("--user", "user_ref", default=None, help="User id or email.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--from", "from_id", default=None, type=click.IntRange(0),
              help="The events after this log id, oldest first.")  # fmt: skip
@click.option("--follow", is_flag=True, help="Keep printing new events (Ctrl-C to stop).")
@click.option("--poll", default=1.0, type=click.FloatRange(0.01, 60), hidden=True)
@pass_ctx
def logs(
    ctx: Ctx,
    type_: str | None,
    user_ref: str | None,
    limit: int,
    from_id: int | None,
    follow: bool,
    poll: float,
) -> None:
    """Tenant log events, newest first (oldest first with --from or --follow)."""
    from flask import current_app

    from idp.audit import service as audit
    from idp.identity import service as identity
    from idp.logstreams import reader

    def show(e: Any) -> None:
        click.echo(json.dumps(_as_dict(e)) if ctx.as_json else _line(e))

    with ctx.session() as s, _until_ctrl_c(follow) as stop:
        gap = int(current_app.config["LOG_STREAM_GAP_SECONDS"])
        user_id = identity.get_user(s, user_ref).id if user_ref else None
        if from_id is None:
            rows = audit.query(s, type_=type_, user_id=user_id, limit=limit)
            last = max((e.id for e in rows), default=0)
            for e in reversed(rows) if follow else rows:
                show(e)
        else:
            rows = reader.after(s, from_id, limit, gap_seconds=gap, type_=type_, user_id=user_id)
            last = rows[-1].id if rows else from_id
            for e in rows:
                show(e)
        while follow and not stop.is_set():
            s.rollback()  # end the read transaction: a fresh snapshot each poll
            rows = reader.after(s, last, 100, gap_seconds=gap, type_=type_, user_id=user_id)
            for e in rows:
                show(e)
                last = e.id
            if len(rows) < 100:
                stop.wait(poll)


@contextmanager
def _until_ctrl_c(follow: bool) -> Iterator[threading.Event]:
    """An event set by Ctrl-C, for ``--follow``: Ctrl-C is how a tail ends, not an error.

    SIGINT only sets the flag, read between polls, from before the first read on: a
    KeyboardInterrupt raised in the middle of a database call or of the first page would
    leave the session half closed and make click answer "Aborted!" with status 1.
    """
    stop = threading.Event()
    if not follow:
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
