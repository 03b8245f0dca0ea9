"""``idp clients ...``: applications (create, list, delete)."""

from __future__ import annotations

from typing import Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


def _client_dict(c: Any) -> dict[str, Any]:
    """An application as the commands print it (its secret is shown once, by create)."""
    return {
        "client_id": c.client_id,
        "name": c.name,
        "type": c.app_type,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "first_party": c.first_party,
    }


@click.group(cls=Group)
def clients() -> None:
    """Applications."""


@clients.command("create")
@click.option("--name", required=True)
@click.option(
    "--type", "app_type", required=True, type=click.Choice(["regular_web", "spa", "native", "m2m"])
)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post"]),
    default=None,
    help="Token endpoint authentication (confidential apps).",
)
@click.option("--third-party", is_flag=True, help="Users are asked for consent (OIDC §3.1.2.4).")
@pass_ctx
def clients_create(
    ctx: Ctx,
    name: str,
    app_type: str,
    redirect_uris: tuple[str, ...],
    logout_uris: tuple[str, ...],
    auth_method: str | None,
    third_party: bool,
) -> None:
    from idp.extensions import services
    from idp.oauth import service

    with ctx.session() as s:
        created = service.create_client(
            s,
            services().box,
            name=name,
            app_type=app_type,
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(logout_uris),
            first_party=not third_party,
        )
        if auth_method:
            service.set_auth_method(s, created.client.client_id, auth_method)
        data = _client_dict(created.client) | {"client_secret": created.client_secret}
    ctx.emit(
        data,
        lambda: (
            f"client_id: {data['client_id']}"
            + (
                f"\nclient_secret: {data['client_secret']}  (shown once; store it now)"
                if data["client_secret"]
                else ""
            )
        ),
    )


@clients.command("list")
@pass_ctx
def clients_list(ctx: Ctx) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        rows = [_client_dict(c) for c in service.list_clients(s)]
    ctx.emit(rows, lambda: table(rows, ["client_id", "type", "name"]))


@clients.command("delete")
@click.argument("client_id")
@pass_ctx
def clients_delete(ctx: Ctx, client_id: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_client(s, client_id)
    ctx.emit({"deleted": client_id}, f"deleted {client_id}")
