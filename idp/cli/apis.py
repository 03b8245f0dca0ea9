"""``idp apis ...`` and ``idp client-grants ...``: APIs (resource servers) and which
machine-to-machine application may get which of their scopes."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


@click.group(cls=Group)
def apis() -> None:
    """APIs (resource servers)."""


@apis.command("create")
@click.option("--identifier", required=True, help="Audience URI.")
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True)
@pass_ctx
def apis_create(ctx: Ctx, identifier: str, name: str, scopes: tuple[str, ...]) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        api = service.create_api(s, identifier=identifier, name=name, scopes=list(scopes))
        data = {"id": api.id, "identifier": api.identifier, "name": api.name, "scopes": api.scopes}
    ctx.emit(data, f"API {data['identifier']} created")


@apis.command("list")
@pass_ctx
def apis_list(ctx: Ctx) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        rows = [
            {"identifier": a.identifier, "name": a.name, "scopes": " ".join(a.scopes)}
            for a in service.list_apis(s)
        ]
    ctx.emit(rows, lambda: table(rows, ["identifier", "name", "scopes"]))


@apis.command("delete")
@click.argument("identifier")
@pass_ctx
def apis_delete(ctx: Ctx, identifier: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_api(s, identifier)
    ctx.emit({"deleted": identifier}, f"deleted {identifier}")


@click.group("client-grants", cls=Group)
def client_grants() -> None:
    """Which m2m application may get which scopes of which API."""


@client_grants.command("create")
@click.option("--client-id", required=True)
@click.option("--audience", required=True)
@click.option("--scope", "scopes", multiple=True)
@pass_ctx
def client_grants_create(ctx: Ctx, client_id: str, audience: str, scopes: tuple[str, ...]) -> None:
    from idp.extensions import services
    from idp.management.service import ensure_api, management_audience
    from idp.oauth import service

    with ctx.session() as s:
        issuer = services().issuer.issuer
        if audience == management_audience(issuer):
            ensure_api(s, issuer)  # the management API exists from its first grant on
        g = service.create_client_grant(
            s, client_id=client_id, audience=audience, scopes=list(scopes)
        )
        data = {"id": g.id, "client_id": g.client_id, "audience": g.audience, "scopes": g.scopes}
    ctx.emit(data, f"client grant {data['id']} created")


@client_grants.command("list")
@pass_ctx
def client_grants_list(ctx: Ctx) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        rows = [
            {
                "id": g.id,
                "client_id": g.client_id,
                "audience": g.audience,
                "scopes": " ".join(g.scopes),
            }
            for g in service.list_client_grants(s)
        ]
    ctx.emit(rows, lambda: table(rows, ["id", "client_id", "audience", "scopes"]))


@client_grants.command("delete")
@click.argument("grant_id")
@pass_ctx
def client_grants_delete(ctx: Ctx, grant_id: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_client_grant(s, grant_id)
    ctx.emit({"deleted": grant_id}, f"deleted {grant_id}")
