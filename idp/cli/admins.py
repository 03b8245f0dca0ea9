"""``idp admins ...``: who may use the admin console (``/admin``)."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


@click.group(cls=Group)
def admins() -> None:
    """Console admins."""


@admins.command("add")
@click.option("--email", required=True, help="An existing user's email.")
@pass_ctx
def admins_add(ctx: Ctx, email: str) -> None:
    """Give a user the admin role. The console also asks them for a second factor."""
    from idp.console import service

    with ctx.session() as s:
        user = service.add_admin(s, email, "cli")
        shown = {"user_id": user.id, "email": user.email}
    ctx.emit(shown, f"{shown['email']} is an admin ({shown['user_id']})")


@admins.command("remove")
@click.option("--email", required=True)
@pass_ctx
def admins_remove(ctx: Ctx, email: str) -> None:
    """Take the admin role away; their console session ends at its next request."""
    from idp.console import service

    with ctx.session() as s:
        user = service.remove_admin(s, email)
        shown = {"user_id": user.id, "email": user.email}
    ctx.emit(shown, f"{shown['email']} is no longer an admin")


@admins.command("list")
@pass_ctx
def admins_list(ctx: Ctx) -> None:
    from idp.console import service

    with ctx.session() as s:
        rows = [{"user_id": u.id, "email": u.email, "added_at": a.added_at, "added_by": a.added_by}
                for u, a in service.admins(s)]  # fmt: skip
    ctx.emit(rows, lambda: table(rows, ["email", "user_id", "added_by"]))
