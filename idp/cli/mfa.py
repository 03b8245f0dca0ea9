"""``idp mfa ...``: per-application MFA policy, and an operator's view and reset of a user's
factors (a user who lost every factor and every recovery code)."""

from __future__ import annotations

from typing import Any

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


def _user_id(s: Session, user: str | None, email: str | None) -> str:
    from idp.core.errors import NotFoundError
    from idp.identity.service import get_user

    if (user is None) == (email is None):
        raise click.ClickException("name the user: a user id (or email) or --email, one of them")
    try:
        return get_user(s, user or email or "").id
    except NotFoundError:
        raise click.ClickException(f"no user with email or id {user or email!r}") from None


def _when(at: int | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at)) if at else "never"


def _text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no factors"
    lines = []
    for r in rows:
        name = r["label"] or r["kind_name"]
        extra = f", {r['codes_left']} left" if "codes_left" in r else ""
        web = ", Web Push" if r.get("web_push") else ""
        lines.append(
            f"{r['id']}  {r['kind']:<8} {name} ({r['model'] or '-'}{web}{extra})  "
            f"added {_when(r['created_at'])}, last used {_when(r['last_used_at'])}"
        )
    return "\n".join(lines)


@mfa.command("list")
@click.argument("user", required=False)
@click.option("--email", default=None, help="The user's email (or its user id).")
@pass_ctx
def list_(ctx: Ctx, user: str | None, email: str | None) -> None:
    """USER's (a user id or an email) factors of every kind: authenticator apps, push devices
    (with their Web Push subscription), security keys, passkeys, phones, recovery codes; with
    label, model, when added and last used."""
    from idp.mfa import methods

    with ctx.session() as s:
        user_id = _user_id(s, user, email)
        rows = [m.as_dict() for m in methods.methods(s, user_id)]
    left = next((int(r["codes_left"]) for r in rows if r["kind"] == "recovery"), 0)
    factors = [r for r in rows if r["kind"] != "recovery"]
    ctx.emit(
        {"user_id": user_id, "factors": factors, "recovery_codes_left": left, "methods": rows},
        lambda: _text(rows),
    )


@mfa.command("reset")
@click.argument("user", required=False)
@click.option("--email", default=None, help="The user's email (or its user id).")
@click.option(
    "--factor",
    "factor_id",
    default=None,
    help="remove only this factor (an id from idp mfa list; recovery-code: the codes)",
)
@click.option("--kind", type=click.Choice(["totp", "push", "key", "passkey", "phone", "recovery"]),
              default=None, help="remove every factor of this kind")  # fmt: skip
@pass_ctx
def reset(
    ctx: Ctx, user: str | None, email: str | None, factor_id: str | None, kind: str | None
) -> None:
    """Remove USER's factors (all, one with --factor, or one kind with --kind), and with them
    the remembered browsers; with neither, the recovery codes and codes in flight too."""
    from idp.audit import events
    from idp.audit import service as audit
    from idp.mfa import methods, service

    if factor_id and kind:
        raise click.ClickException("--factor or --kind, not both")
    with ctx.session() as s:
        user_id = _user_id(s, user, email)
        try:
            if factor_id:
                gone = [methods.remove(s, user_id, factor_id)]
            else:
                gone = methods.reset(s, user_id, kind)
        except service.MfaError as exc:
            raise click.ClickException(str(exc)) from None
        for m in gone:
            audit.record(s, events.MFA_REMOVED, "Factor removed by an operator (idp mfa reset)",
                         audit.Origin("cli", "idp"), user_id=user_id,
                         details={"kind": m.kind, "factor_id": m.id})  # fmt: skip
    removed = [{"id": m.id, "kind": m.kind} for m in gone]
    ctx.emit(
        {"user_id": user_id, "removed": len(gone), "factors": removed},
        f"removed {len(gone)} factor(s) of {user or email}",
    )
