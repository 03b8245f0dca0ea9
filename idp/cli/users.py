"""``idp users ...``: users of the database connection (create, list, show, update, delete,
unblock)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table

if TYPE_CHECKING:
    from idp.identity.models import User


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


def _user_data(u: User) -> dict[str, Any]:
    """A user for ``--json``: its id and the standard claims it has (OIDC Core §5.1)."""
    from idp.identity import profile

    return {"user_id": u.id, **profile.standard_claims(u)}


def _user_text(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{k}: {json.dumps(v) if isinstance(v, dict | bool) else v}" for k, v in data.items()
    )


@users.command("list")
@pass_ctx
def users_list(ctx: Ctx) -> None:
    from idp.identity import service

    with ctx.session() as s:
        rows = [_user_data(u) for u in service.list_users(s)]
    ctx.emit(rows, lambda: table(rows, ["user_id", "email", "email_verified"]))


@users.command("show")
@click.option("--email", required=True, help="The user's email (or its user id).")
@pass_ctx
def users_show(ctx: Ctx, email: str) -> None:
    from idp.identity import service

    with ctx.session() as s:
        data = _user_data(service.get_user(s, email))
    ctx.emit(data, lambda: _user_text(data))


# (option, claim) for the plain-text claims; "" removes a claim.
_TEXT_OPTIONS = [
    ("--name", "name"), ("--given-name", "given_name"), ("--family-name", "family_name"),
    ("--middle-name", "middle_name"), ("--nickname", "nickname"),
    ("--preferred-username", "preferred_username"), ("--profile", "profile"),
    ("--picture", "picture"), ("--website", "website"), ("--gender", "gender"),
    ("--birthdate", "birthdate"), ("--zoneinfo", "zoneinfo"), ("--locale", "locale"),
    ("--phone-number", "phone_number"),
]  # fmt: skip


def _claim_options(f: Any) -> Any:
    for option, claim in reversed(_TEXT_OPTIONS):
        f = click.option(option, claim, default=None, help=f"The {claim} claim ('' removes it).")(f)
    return f


@users.command("update")
@click.option("--email", required=True, help="The user's email (or its user id).")
@_claim_options
@click.option("--phone-number-verified/--phone-number-unverified", default=None)
@click.option("--address-json", default=None, help="OIDC Core §5.1.1 object; '{}' removes it.")
@pass_ctx
def users_update(
    ctx: Ctx, email: str, phone_number_verified: bool | None, address_json: str | None,
    **claims: str | None,
) -> None:  # fmt: skip
    """Set or remove a user's standard claims (OIDC Core §5.1); updated_at moves on a change."""
    from idp.identity import service

    changes: dict[str, Any] = {k: v for k, v in claims.items() if v is not None}
    if phone_number_verified is not None:
        changes["phone_number_verified"] = phone_number_verified
    if address_json is not None:
        try:
            changes["address"] = json.loads(address_json) if address_json.strip() else None
        except ValueError:
            raise click.ClickException("--address-json is not valid JSON") from None
    if not changes:
        raise click.ClickException("nothing to update: give at least one claim option")
    with ctx.session() as s:
        changed = service.update_profile(s, email, changes)
        data = _user_data(service.get_user(s, email))
    ctx.emit(
        {**data, "changed": changed},
        lambda: _user_text(data) if changed else f"{data['user_id']}: nothing changed",
    )


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
