"""``idp clients initial-token ...``: the initial access tokens that dynamic client
registration asks for (RFC 7591 §3; ``DYNAMIC_REGISTRATION_ENABLED``). A token is printed
once, at creation; idp keeps a digest."""

from __future__ import annotations

from typing import Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


def _token_dict(t: Any) -> dict[str, Any]:
    return {
        "id": t.id,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "max_uses": t.max_uses,
        "uses": t.uses,
        "revoked_at": t.revoked_at,
    }


@click.group("initial-token", cls=Group)
def initial_token() -> None:
    """Initial access tokens for POST /oauth/register (RFC 7591 §3)."""


@initial_token.command("create")
@click.option("--expires-in", type=int, default=None, help="Seconds it stays valid (default: "
              "until revoked).")  # fmt: skip
@click.option("--max-uses", type=int, default=None, help="Registrations it allows (default: "
              "unlimited).")  # fmt: skip
@pass_ctx
def token_create(ctx: Ctx, expires_in: int | None, max_uses: int | None) -> None:
    """Make a token (printed once; idp stores only its digest)."""
    from idp.extensions import services
    from idp.oauth import registration

    with ctx.session() as s:
        row, token = registration.create_initial_token(s, services().box, expires_in, max_uses)
        data = _token_dict(row) | {"token": token}
    ctx.emit(data, lambda: f"id: {data['id']}\ntoken: {token}  (shown once; store it now)")


@initial_token.command("list")
@pass_ctx
def token_list(ctx: Ctx) -> None:
    """Every token: uses, limits, expiry, revocation (never the token itself)."""
    from idp.oauth import registration

    with ctx.session() as s:
        rows = [_token_dict(t) for t in registration.list_initial_tokens(s)]
    ctx.emit(rows, lambda: table(rows, ["id", "uses", "max_uses", "expires_at", "revoked_at"]))


@initial_token.command("revoke")
@click.argument("token_id")
@pass_ctx
def token_revoke(ctx: Ctx, token_id: str) -> None:
    """Revoke a token by its id; clients it registered stay."""
    from idp.core.errors import NotFoundError
    from idp.oauth import registration

    with ctx.session() as s:
        if not registration.revoke_initial_token(s, token_id):
            raise NotFoundError(f"no active initial access token {token_id!r}")
    ctx.emit({"revoked": token_id}, f"revoked {token_id}")
