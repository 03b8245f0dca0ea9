"""Operator commands: keys, clients, apis, client-grants, users, demo."""

from __future__ import annotations

import json
from typing import Any

import click

from idp.cli import Ctx, pass_ctx


def _client_dict(c: Any) -> dict[str, Any]:
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


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(none)"
    return "\n".join("  ".join(str(r.get(c, "")) for c in cols) for r in rows)


@click.group()
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
    ctx.emit(rows, lambda: _table(rows, ["kid", "alg", "status", "created_at", "unpublish_at"]))


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


@click.group()
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
    ctx.emit(rows, lambda: _table(rows, ["client_id", "type", "name"]))


@clients.command("delete")
@click.argument("client_id")
@pass_ctx
def clients_delete(ctx: Ctx, client_id: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_client(s, client_id)
    ctx.emit({"deleted": client_id}, f"deleted {client_id}")


@click.group()
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
    ctx.emit(rows, lambda: _table(rows, ["identifier", "name", "scopes"]))


@apis.command("delete")
@click.argument("identifier")
@pass_ctx
def apis_delete(ctx: Ctx, identifier: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_api(s, identifier)
    ctx.emit({"deleted": identifier}, f"deleted {identifier}")


@click.group("client-grants")
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
    ctx.emit(rows, lambda: _table(rows, ["id", "client_id", "audience", "scopes"]))


@client_grants.command("delete")
@click.argument("grant_id")
@pass_ctx
def client_grants_delete(ctx: Ctx, grant_id: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_client_grant(s, grant_id)
    ctx.emit({"deleted": grant_id}, f"deleted {grant_id}")


@click.group()
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


@users.command("list")
@pass_ctx
def users_list(ctx: Ctx) -> None:
    from idp.identity import service

    with ctx.session() as s:
        rows = [
            {"user_id": u.id, "email": u.email, "email_verified": u.email_verified}
            for u in service.list_users(s)
        ]
    ctx.emit(rows, lambda: _table(rows, ["user_id", "email", "email_verified"]))


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


@click.command("logs")
@click.option("--type", "type_", default=None, help="Event type, e.g. login.failure.")
@click.option("--user", "user_ref", default=None, help="User id or email.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--follow", is_flag=True, help="Keep printing new events (Ctrl-C to stop).")
@pass_ctx
def logs(ctx: Ctx, type_: str | None, user_ref: str | None, limit: int, follow: bool) -> None:
    """Tenant log events, newest first (oldest first with --follow)."""
    import time

    from idp.audit import service as audit
    from idp.identity import service as identity

    def line(e: Any) -> str:
        return f"{e.id}  {e.time}  {e.type:<18} user={e.user_id or '-'} ip={e.ip or '-'}  " + (
            e.description
        )

    def as_dict(e: Any) -> dict[str, Any]:
        return {
            "id": e.id,
            "type": e.type,
            "time": e.time,
            "user_id": e.user_id,
            "client_id": e.client_id,
            "ip": e.ip,
            "user_agent": e.user_agent,
            "description": e.description,
            "details": e.details,
        }

    with ctx.session() as s:
        user_id = identity.get_user(s, user_ref).id if user_ref else None
        rows = audit.query(s, type_=type_, user_id=user_id, limit=limit)
        last = max((e.id for e in rows), default=0)
        for e in reversed(rows) if follow else rows:
            click.echo(json.dumps(as_dict(e)) if ctx.as_json else line(e))
        while follow:
            time.sleep(1)
            s.rollback()  # a fresh snapshot each poll
            for e in audit.query(s, type_=type_, user_id=user_id, after_id=last, limit=limit):
                last = e.id
                click.echo(json.dumps(as_dict(e)) if ctx.as_json else line(e), nl=True)


@click.group()
def consents() -> None:
    """What users have allowed third-party applications."""


@consents.command("list")
@click.option("--user", "user_ref", required=True, help="User id or email.")
@pass_ctx
def consents_list(ctx: Ctx, user_ref: str) -> None:
    from idp.consent import service as consent
    from idp.identity import service as identity

    with ctx.session() as s:
        user = identity.get_user(s, user_ref)
        rows = [
            {"client_id": c.client_id, "grants": [g.replace("\t", " ") for g in c.grants]}
            for c in consent.list_for_user(s, user.id)
        ]
    ctx.emit(rows, lambda: _table(rows, ["client_id", "grants"]))


@consents.command("revoke")
@click.option("--user", "user_ref", required=True, help="User id or email.")
@click.option("--client-id", required=True)
@pass_ctx
def consents_revoke(ctx: Ctx, user_ref: str, client_id: str) -> None:
    """Forget the consent; the application's tokens for the user stop working."""
    from idp.consent import service as consent
    from idp.identity import service as identity

    with ctx.session() as s:
        consent.revoke(s, identity.get_user(s, user_ref).id, client_id)
    ctx.emit({"revoked": client_id}, f"consent for {client_id} revoked")


def register(main: click.Group) -> None:
    from idp.actions.cli import actions
    from idp.actions.marketplace import marketplace
    from idp.demo import demo
    from idp.mfa.cli import mfa

    for group in (keys, clients, apis, client_grants, users, consents, logs, demo, actions):
        main.add_command(group)
    main.add_command(mfa)
    main.add_command(marketplace)
