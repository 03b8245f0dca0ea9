"""``idp users ...``: users (create, list, show, update, delete, unblock) and their identities
(link, unlink: the operators' account linking of issue 12)."""

from __future__ import annotations

import json
import secrets
import sys
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
    """A user for ``--json``: its id, the standard claims it has (OIDC Core §5.1) and, as in
    Auth0's user object, its ``identities`` (provider, connection, upstream user_id, isSocial)."""
    from idp.connections import service as connections
    from idp.extensions import db
    from idp.identity import profile

    identities = connections.identity_dicts(db.session, u.id)
    return {"user_id": u.id, **profile.standard_claims(u), "identities": identities}


def _user_text(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{k}: {json.dumps(v) if isinstance(v, dict | bool | list) else v}" for k, v in data.items()
    )


@users.command("list")
@pass_ctx
def users_list(ctx: Ctx) -> None:
    from idp.identity import service

    with ctx.session() as s:
        rows = [_user_data(u) for u in service.list_users(s)]
    ctx.emit(rows, lambda: table(rows, ["user_id", "email", "email_verified"]))


@users.command("show")
@click.argument("user", required=False)
@click.option("--email", default=None, help="The user's email (or its user id).")
@pass_ctx
def users_show(ctx: Ctx, user: str | None, email: str | None) -> None:
    """Show USER (a user id or an email) or --email E: claims and identities."""
    from idp.identity import service

    if (user is None) == (email is None):
        raise click.ClickException("name the user: a user id (or email) or --email, one of them")
    with ctx.session() as s:
        data = _user_data(service.get_user(s, user or email or ""))
    ctx.emit(data, lambda: _user_text(data))


def _identity_flags(f: Any) -> Any:
    f = click.option("--upstream-id", required=True, help="The user's id at that connection.")(f)
    f = click.option("--connection", required=True, help="The connection's name.")(f)
    return click.argument("user")(f)


@users.command("link")
@_identity_flags
@click.option("--profile-json", default=None, help="The upstream profile (a JSON object).")
@pass_ctx
def users_link(
    ctx: Ctx, user: str, connection: str, upstream_id: str, profile_json: str | None
) -> None:
    """Give USER (id or email) an identity at a connection; its user_id stays. An upstream
    account linked to anyone already is refused."""
    from idp.connections import service as connections
    from idp.identity import service

    try:
        profile = json.loads(profile_json) if profile_json else {}
    except ValueError:
        raise click.ClickException("--profile-json is not valid JSON") from None
    if not isinstance(profile, dict):
        raise click.ClickException("--profile-json must be a JSON object")
    with ctx.session() as s:
        user_id = service.get_user(s, user).id
        connections.link_identity(s, user_id, connection, upstream_id, profile)
        s.flush()
        data = _user_data(service.get_user(s, user_id))
    ctx.emit(data, lambda: _user_text(data))


@users.command("unlink")
@_identity_flags
@pass_ctx
def users_unlink(ctx: Ctx, user: str, connection: str, upstream_id: str) -> None:
    """Remove one of USER's identities (never the last one, nor its database identity)."""
    from idp.connections import service as connections
    from idp.identity import service

    with ctx.session() as s:
        user_id = service.get_user(s, user).id
        connections.unlink_identity(s, user_id, connection, upstream_id)
        s.flush()
        data = _user_data(service.get_user(s, user_id))
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
    from idp.identity import operator, service

    with ctx.session() as s:  # as the management API deletes: sessions ended, tokens gone
        operator.delete_user(s, service.get_user(s, user))
    ctx.emit({"deleted": user}, f"deleted {user}")


STDIN = "-"  # --password - reads the password from stdin (keeps it out of the shell's history)


@users.command("set-password")
@click.option("--email", required=True, help="The user's email (or its user id).")
@click.option("--password", default=None, help="The new password; '-' reads it from stdin.")
@pass_ctx
def users_set_password(ctx: Ctx, email: str, password: str | None) -> None:
    """Set a user's password (a random one, printed, without --password); ends their sessions."""
    from idp.audit import events
    from idp.audit import service as audit
    from idp.demo import seed
    from idp.extensions import services
    from idp.flows import service as flows
    from idp.identity import service

    generated = password is None
    if password == STDIN:
        password = sys.stdin.readline().rstrip("\r\n")
    new = password or secrets.token_urlsafe(12)
    if len(new) < 8:
        raise click.ClickException("password must be at least 8 characters")
    with ctx.session() as s:
        user = service.get_user(s, email)
        service.set_password(s, services().passwords, user, new)
        flows.end_user_sessions(s, user.id)  # as a reset does: whoever knew the old one is out
        audit.record(
            s, events.PASSWORD_RESET, "Password set by an operator", audit.Origin(None, "idp cli"),
            user_id=user.id,
        )  # fmt: skip
        data: dict[str, Any] = {"user_id": user.id, "email": user.email}
    seed.remember_password(ctx.instance, data["email"], new)  # the demo user's, in demo.json
    if generated:
        data["password"] = new
    ctx.emit(data, f"password of {data['email']} set" + (f": {new}" if generated else ""))


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
