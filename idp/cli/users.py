"""``idp users ...``: users of the database connection (create, list, delete, unblock)."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


@click.group(cls=Group)
def users() -> None:
    """Users of the database connection."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--email-verified", is_flag=True)
@pass_ctx
def users_create(ctx: Ctx, email: str, password: str, email_verified: bool) -> None:
    from idp.extensions import services
    from idp.identity import service

    with ctx.session() as s:
        u = service.create_user(
            s, services().passwords, email=email, password=password, email_verified=email_verified
        )
        data = {"user_id": u.id, "email": u.email, "email_verified": u.email_verified}
    ctx.emit(data, f"user {data['user_id']} <{data['email']}> created")


@users.command("list")
@pass_ctx
def users_list(ctx: Ctx) -> None:
    from idp.identity import service

    with ctx.session() as s:
        rows = [
            {"user_id": u.id, "email": u.email, "email_verified": u.email_verified}
            for u in service.list_users(s)
        ]
    ctx.emit(rows, lambda: table(rows, ["user_id", "email", "email_verified"]))


@users.command("delete")
@click.argument("user")
@pass_ctx
def users_delete(ctx: Ctx, user: str) -> None:
    from idp.identity import service

    with ctx.session() as s:
        service.delete_user(s, user)
    ctx.emit({"deleted": user}, f"deleted {user}")


@users.command("unblock")
@click.option("--email", required=True)
@pass_ctx
def users_unblock(ctx: Ctx, email: str) -> None:
    """Lift brute-force blocks on this account, from every IP."""
    from idp.audit import events
    from idp.audit import service as audit
    from idp.extensions import services
    from idp.identity import service as identity

    with ctx.session() as s:
        cleared = services().shields.unblock(email)
        audit.record(
            s,
            events.ACCOUNT_UNBLOCKED,
            "Unblocked by an operator",
            audit.Origin(None, "idp cli"),
            user_id=identity.find_user_id(s, email),
        )
    ctx.emit({"cleared": cleared}, f"cleared {cleared} counter(s) for {email}")
