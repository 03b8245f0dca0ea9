"""``idp keys ...``: the signing keys (list, rotate, revoke)."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


@click.group(cls=Group)
def keys() -> None:
    """Signing keys."""


@keys.command("list")
@pass_ctx
def keys_list(ctx: Ctx) -> None:
    """Every key with its state now: next (published, not signing yet), active, retired
    (published until its tokens expire), unpublished, revoked."""
    from sqlalchemy import select

    from idp.core import clock
    from idp.keys.models import SigningKey
    from idp.keys.service import activation, state

    names = {"current": "active"}  # the word this command has always printed
    with ctx.session() as s:
        now = clock.now()
        rows = [
            {
                "kid": k.kid,
                "alg": k.alg,
                "created_at": k.created_at,
                "status": names.get(state(k, now), state(k, now)),
                "signs_from": activation(k),
                "retires_at": k.retired_at,
                "unpublish_at": k.unpublish_at,
            }
            for k in s.scalars(select(SigningKey).order_by(SigningKey.created_at))
        ]
    columns = ["kid", "alg", "status", "signs_from", "retires_at", "unpublish_at"]
    ctx.emit(rows, lambda: table(rows, columns))


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), default=None)
@click.option(
    "--now",
    "at_once",
    is_flag=True,
    help="Sign with it at once, no overlap (relying parties refetch on the new kid).",
)
@pass_ctx
def keys_rotate(ctx: Ctx, alg: str | None, at_once: bool) -> None:
    """Stage a new signing key: in the JWKS now, signing after
    KEY_PUBLISH_BEFORE_SIGNING_SECONDS; old keys stay in the JWKS until their tokens expire."""
    from idp.extensions import services
    from idp.keys.service import activation, publish_before, publish_window, rotate

    with ctx.session() as s:
        svc = services()
        overlap = 0 if at_once else publish_before(svc.config)
        row = rotate(s, svc.box, alg or svc.config["SIGNING_ALG"], publish_window(svc.config),
                     overlap)  # fmt: skip
        data = {"kid": row.kid, "alg": row.alg, "signs_from": activation(row)}
    ctx.emit(data, f"new signing key {data['kid']} ({data['alg']}), signing from "
                   f"{data['signs_from']} (Unix time)")  # fmt: skip


@keys.command("revoke")
@click.argument("kid")
@pass_ctx
def keys_revoke(ctx: Ctx, kid: str) -> None:
    """Out of the JWKS now: tokens it signed stop verifying (never the current key; a staged
    one leaves the current key current)."""
    from idp.keys.service import revoke

    with ctx.session() as s:
        row = revoke(s, kid)
        data = {"kid": row.kid, "revoked_at": row.revoked_at}
    ctx.emit(data, f"revoked signing key {data['kid']}")
