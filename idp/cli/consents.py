"""``idp consents ...``: what users have allowed third-party applications."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


@click.group(cls=Group)
def consents() -> None:
    """What users have allowed third-party applications."""


@consents.command("list")
@click.option("--user", "user_ref", required=True, help="User id or email.")
@pass_ctx
def consents_list(ctx: Ctx, user_ref: str) -> None:
    from idp.consent import service as consent
    from idp.identity import service as identity

    with ctx.session() as s:
        user = identity.get_user(s, user_ref)
        rows = [
            {"client_id": c.client_id, "grants": [g.replace("\t", " ") for g in c.grants]}
            for c in consent.list_for_user(s, user.id)
        ]
    ctx.emit(rows, lambda: table(rows, ["client_id", "grants"]))


@consents.command("revoke")
@click.option("--user", "user_ref", required=True, help="User id or email.")
@click.option("--client-id", required=True)
@pass_ctx
def consents_revoke(ctx: Ctx, user_ref: str, client_id: str) -> None:
    """Forget the consent; the application's tokens for the user stop working."""
    from idp.consent import service as consent
    from idp.identity import service as identity

    with ctx.session() as s:
        consent.revoke(s, identity.get_user(s, user_ref).id, client_id)
    ctx.emit({"revoked": client_id}, f"consent for {client_id} revoked")
