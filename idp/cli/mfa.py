"""``idp mfa ...``: per-application MFA policy, and an operator's view and reset of a user's
factors (a user who lost every factor and every recovery code)."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from idp.cli.context import Ctx, Group, pass_ctx


@click.group(cls=Group)
def mfa() -> None:
    """Multi-factor authentication: app policies, users' factors."""


@mfa.command("policy")
@click.argument("client_id")
@click.argument("policy", type=click.Choice(["never", "always", "adaptive", "tenant"]))
@pass_ctx
def policy(ctx: Ctx, client_id: str, policy: str) -> None:
    """Set CLIENT_ID's MFA policy ("tenant" follows IDP_MFA_POLICY)."""
    from idp.oauth.service import get_client

    with ctx.session() as s:
        client = get_client(s, client_id)
        client.mfa_policy = None if policy == "tenant" else policy
    ctx.emit({"client_id": client_id, "mfa_policy": policy}, f"{client_id}: MFA {policy}")


def _user_id(s: Session, email: str) -> str:
    from idp.identity.service import find_user_id

    user_id = find_user_id(s, email)
    if user_id is None:
        raise click.ClickException(f"no user with email {email!r}")
    return user_id


@mfa.command("list")
@click.option("--email", required=True)
@pass_ctx
def list_(ctx: Ctx, email: str) -> None:
    """A user's enrolled factors and how many recovery codes are left."""
    from idp.mfa import service

    with ctx.session() as s:
        user_id = _user_id(s, email)
        rows = [
            {"id": f.id, "kind": f.kind, "name": f.name, "created_at": f.created_at,
             "last_used_at": f.last_used_at}
            for f in service.factors(s, user_id)
        ]  # fmt: skip
        left = service.recovery_codes_left(s, user_id)
    ctx.emit(
        {"factors": rows, "recovery_codes_left": left},
        lambda: (
            "\n".join(f"{r['id']}  {r['kind']:<8} {r['name']}" for r in rows)
            + f"\nrecovery codes left: {left}"
        ),
    )


@mfa.command("reset")
@click.option("--email", required=True)
@click.option("--factor", "factor_id", default=None, help="remove only this factor")
@pass_ctx
def reset(ctx: Ctx, email: str, factor_id: str | None) -> None:
    """Remove a user's factors (all, or one), recovery codes and remembered browsers."""
    from idp.audit import events
    from idp.audit import service as audit
    from idp.mfa import service

    with ctx.session() as s:
        user_id = _user_id(s, email)
        if factor_id:
            try:
                service.remove_factor(s, user_id, factor_id)
            except service.MfaError as exc:
                raise click.ClickException(str(exc)) from None
            removed = 1
        else:
            removed = service.reset_user(s, user_id)
        audit.record(s, events.MFA_REMOVED, f"Operator removed {removed} factor(s)",
                     audit.Origin("cli", "idp"), user_id=user_id)  # fmt: skip
    ctx.emit({"email": email, "removed": removed}, f"removed {removed} factor(s) of {email}")
