"""``idp keys ...``: the signing keys (list, rotate)."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


@click.group(cls=Group)
def keys() -> None:
    """Signing keys."""


@keys.command("list")
@pass_ctx
def keys_list(ctx: Ctx) -> None:
    from sqlalchemy import select

    from idp.keys.models import SigningKey

    with ctx.session() as s:
        rows = [
            {
                "kid": k.kid,
                "alg": k.alg,
                "created_at": k.created_at,
                "status": "retired" if k.retired_at else "active",
                "unpublish_at": k.unpublish_at,
            }
            for k in s.scalars(select(SigningKey).order_by(SigningKey.created_at))
        ]
    ctx.emit(rows, lambda: table(rows, ["kid", "alg", "status", "created_at", "unpublish_at"]))


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), default=None)
@pass_ctx
def keys_rotate(ctx: Ctx, alg: str | None) -> None:
    """New signing key now; old keys stay in the JWKS until their tokens have expired."""
    from idp.extensions import services
    from idp.keys.service import rotate

    with ctx.session() as s:
        svc = services()
        keep = max(svc.config["ID_TOKEN_TTL"], svc.config["ACCESS_TOKEN_TTL"]) + 300
        row = rotate(s, svc.box, alg or svc.config["SIGNING_ALG"], keep)
        data = {"kid": row.kid, "alg": row.alg}
    ctx.emit(data, f"new signing key {data['kid']} ({data['alg']})")
