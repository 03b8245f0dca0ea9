"""``idp logs``: tenant log events, or a live tail of them with ``--follow``."""

from __future__ import annotations

import json
from typing import Any

import click

from idp.cli.context import Command, Ctx, pass_ctx


@click.command("logs", cls=Command)
@click.option("--type", "type_", default=None, help="Event type, e.g. login.failure.")
@click.option("--user", "user_ref", default=None, help="User id or email.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--follow", is_flag=True, help="Keep printing new events (Ctrl-C to stop).")
@pass_ctx
def logs(ctx: Ctx, type_: str | None, user_ref: str | None, limit: int, follow: bool) -> None:
    """Tenant log events, newest first (oldest first with --follow)."""
    import time

    from idp.audit import service as audit
    from idp.identity import service as identity

    def line(e: Any) -> str:
        return f"{e.id}  {e.time}  {e.type:<18} user={e.user_id or '-'} ip={e.ip or '-'}  " + (
            e.description
        )

    def as_dict(e: Any) -> dict[str, Any]:
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

    with ctx.session() as s:
        user_id = identity.get_user(s, user_ref).id if user_ref else None
        rows = audit.query(s, type_=type_, user_id=user_id, limit=limit)
        last = max((e.id for e in rows), default=0)
        for e in reversed(rows) if follow else rows:
            click.echo(json.dumps(as_dict(e)) if ctx.as_json else line(e))
        while follow:
            time.sleep(1)
            s.rollback()  # a fresh snapshot each poll
            for e in audit.query(s, type_=type_, user_id=user_id, after_id=last, limit=limit):
                last = e.id
                click.echo(json.dumps(as_dict(e)) if ctx.as_json else line(e), nl=True)
