"""``idp connections ...``: the ways users sign in (list, show, enable and disable per app)."""

from __future__ import annotations

from typing import Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


def _connection_dict(session: Any, connection: Any) -> dict[str, Any]:
    """A connection as the commands print it; options stay out (secrets will live there)."""
    from idp.connections import service

    return {
        "id": connection.id,
        "name": connection.name,
        "strategy": connection.strategy,
        "display_name": connection.display_name,
        "position": connection.position,
        "enabled_clients": service.enabled_clients(session, connection),
    }


def _show(data: dict[str, Any]) -> str:
    clients = ", ".join(data["enabled_clients"]) or "(none)"
    return (
        f"name: {data['name']}\nid: {data['id']}\nstrategy: {data['strategy']}\n"
        f"display_name: {data['display_name'] or ''}\nposition: {data['position']}\n"
        f"enabled_clients: {clients}"
    )


@click.group(cls=Group)
def connections() -> None:
    """Connections: how users sign in, and for which applications."""


@connections.command("list")
@pass_ctx
def connections_list(ctx: Ctx) -> None:
    from idp.connections import service

    with ctx.session() as s:
        rows = [_connection_dict(s, c) for c in service.list_connections(s)]
    ctx.emit(rows, lambda: table(rows, ["name", "strategy", "id"]))


@connections.command("show")
@click.argument("name")
@pass_ctx
def connections_show(ctx: Ctx, name: str) -> None:
    from idp.connections import service

    with ctx.session() as s:
        data = _connection_dict(s, service.get_connection(s, name))
    ctx.emit(data, lambda: _show(data))


@connections.command("enable")
@click.argument("name")
@click.option("--client-id", required=True, help="The application to enable it for.")
@pass_ctx
def connections_enable(ctx: Ctx, name: str, client_id: str) -> None:
    """Enable connection NAME for an application (its login page offers it)."""
    from idp.connections import service

    with ctx.session() as s:
        service.enable(s, name, client_id)
        s.flush()
        data = _connection_dict(s, service.get_connection(s, name))
    ctx.emit(data, f"{name} enabled for {client_id}")


@connections.command("disable")
@click.argument("name")
@click.option("--client-id", required=True, help="The application to disable it for.")
@pass_ctx
def connections_disable(ctx: Ctx, name: str, client_id: str) -> None:
    """Disable connection NAME for an application (its users cannot sign in through it there;
    running servers notice within CLIENT_CACHE_SECONDS)."""
    from idp.connections import service

    with ctx.session() as s:
        service.disable(s, name, client_id)
        s.flush()
        data = _connection_dict(s, service.get_connection(s, name))
    ctx.emit(data, f"{name} disabled for {client_id}")
