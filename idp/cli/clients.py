"""``idp clients ...``: applications (create, list, delete)."""

from __future__ import annotations

import json
from typing import Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table

ID_ALG = ("The algorithm of its ID tokens (OIDC Registration §2 id_token_signed_response_alg), "
          "one the tenant signs with now; unset: RS256.")  # fmt: skip


def _client_dict(c: Any) -> dict[str, Any]:
    """An application as the commands print it (its secret is shown once, by create)."""
    return {
        "client_id": c.client_id,
        "name": c.name,
        "type": c.app_type,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "first_party": c.first_party,
        "initiate_login_uri": c.initiate_login_uri,
        "subject_type": c.subject_type,
        "sector_identifier_uri": c.sector_identifier_uri,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "backchannel_logout_session_required": c.backchannel_logout_session_required,
        "jwks_uri": c.jwks_uri,
        "jwks": c.jwks,
        "token_endpoint_auth_signing_alg": c.token_endpoint_auth_signing_alg,
        "require_pushed_authorization_requests": c.require_pushed_authorization_requests,
        "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
    }


def _auth_changes(
    method: str | None, jwks_uri: str | None, jwks_file: Any, alg: str | None, par: bool
) -> dict[str, Any]:
    """What ``idp.oauth.client_auth.configure`` changes (only what was given)."""
    changes: dict[str, Any] = {"require_par": par}
    if method:
        changes["method"] = method
    if jwks_uri:
        changes["jwks_uri"] = jwks_uri
    if jwks_file is not None:
        try:
            changes["jwks"] = json.load(jwks_file)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--jwks-file") from None
    if alg:
        changes["signing_alg"] = alg
    return changes


@click.group(cls=Group)
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
    type=click.Choice(
        ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"]
    ),
    default=None,
    help="Token endpoint authentication (confidential apps).",
)
@click.option("--jwks-uri", default=None, help="Where the app publishes its public keys (https).")
@click.option(
    "--jwks-file", type=click.File("r"), default=None,
    help="A JSON file with the app's public keys (a JWK Set), instead of --jwks-uri.",
)  # fmt: skip
@click.option(
    "--signing-alg", default=None,
    help="The one algorithm its client assertions may use (token_endpoint_auth_signing_alg).",
)  # fmt: skip
@click.option(
    "--require-par", is_flag=True,
    help="Authorization requests only through /oauth/par (RFC 9126 §6).",
)  # fmt: skip
@click.option(
    "--subject-type",
    type=click.Choice(["public", "pairwise"]),
    default=None,
    help="The sub the app sees: the user id, or its sector's own (OIDC Core §8).",
)
@click.option(
    "--sector-identifier-uri",
    default=None,
    help="https URL of a JSON array of its redirect URIs; its host is the sector.",
)
@click.option(
    "--backchannel-logout-uri",
    default=None,
    help="Where a Logout Token is POSTed when a user's session ends (OIDC BCL §2.2).",
)
@click.option("--third-party", is_flag=True, help="Users are asked for consent (OIDC §3.1.2.4).")
@click.option(
    "--initiate-login-uri", default=None,
    help="Where the app starts a login itself (OIDC Core §4; IdP-initiated SAML lands here).",
)  # fmt: skip
@click.option(
    "--dpop-bound-access-tokens", is_flag=True,
    help="Every token request must carry a DPoP proof (RFC 9449 §5.2).",
)  # fmt: skip
@click.option(
    "--id-token-alg", "signed_alg", type=click.Choice(["RS256", "ES256"]), default=None,
    help=ID_ALG,
)  # fmt: skip
@pass_ctx
def clients_create(
    ctx: Ctx,
    name: str,
    app_type: str,
    redirect_uris: tuple[str, ...],
    logout_uris: tuple[str, ...],
    auth_method: str | None,
    jwks_uri: str | None,
    jwks_file: Any,
    signing_alg: str | None,
    require_par: bool,
    subject_type: str | None,
    sector_identifier_uri: str | None,
    backchannel_logout_uri: str | None,
    third_party: bool,
    initiate_login_uri: str | None,
    dpop_bound_access_tokens: bool,
    signed_alg: str | None,
) -> None:
    from idp.extensions import services
    from idp.oauth import client_auth, service
    from idp.oauth.client_features import check_id_token_alg, refuse_switched_off

    with ctx.session() as s:
        refuse_switched_off(services().config, dpop=dpop_bound_access_tokens,
                            logout_uri=backchannel_logout_uri)  # fmt: skip
        created = service.create_client(
            s,
            services().box,
            name=name,
            app_type=app_type,
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(logout_uris),
            first_party=not third_party,
            initiate_login_uri=initiate_login_uri,
        )
        if backchannel_logout_uri:
            from idp.backchannel import service as backchannel

            backchannel.configure(created.client, backchannel_logout_uri)
        if subject_type or sector_identifier_uri:
            from idp.oauth import pairwise

            pairwise.configure(services().config, created.client, subject_type,
                               sector_identifier_uri)  # fmt: skip
        client_auth.configure(
            created.client, services().box, secret=created.client_secret,
            **_auth_changes(auth_method, jwks_uri, jwks_file, signing_alg, require_par),
        )  # fmt: skip
        created.client.dpop_bound_access_tokens = dpop_bound_access_tokens
        check_id_token_alg(signed_alg, services().keys)
        created.client.id_token_signed_response_alg = signed_alg
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


@clients.command("update")
@click.argument("client_id")
@click.option(
    "--initiate-login-uri", default=None, help="Set it ('' removes it): OIDC Core §4."
)  # fmt: skip
@click.option(
    "--grant-type", "grant_types", multiple=True,
    help="The whole list (repeat it), e.g. --grant-type client_credentials --grant-type "
    "urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693).",
)  # fmt: skip
@click.option(
    "--dpop-bound-access-tokens/--no-dpop-bound-access-tokens", default=None,
    help="Every token request must carry a DPoP proof (RFC 9449 §5.2), or not.",
)  # fmt: skip
@click.option(
    "--id-token-alg", "signed_alg", type=click.Choice(["RS256", "ES256", "default"]), default=None,
    help=ID_ALG + " 'default': RS256 again.",
)  # fmt: skip
@pass_ctx
def clients_update(
    ctx: Ctx,
    client_id: str,
    initiate_login_uri: str | None,
    grant_types: tuple[str, ...],
    dpop_bound_access_tokens: bool | None,
    signed_alg: str | None,
) -> None:
    from idp.extensions import services
    from idp.oauth import service
    from idp.oauth.client_features import check_id_token_alg, refuse_switched_off

    with ctx.session() as s:
        client = service.get_client(s, client_id)
        refuse_switched_off(services().config, grant_types=grant_types or None,
                            had_grant_types=client.grant_types, dpop=dpop_bound_access_tokens,
                            had_dpop=client.dpop_bound_access_tokens)  # fmt: skip
        if initiate_login_uri is not None:
            client = service.set_initiate_login_uri(s, client_id, initiate_login_uri)
        if grant_types:
            client = service.update_client(s, client_id, grant_types=list(grant_types))
        if dpop_bound_access_tokens is not None:
            client.dpop_bound_access_tokens = dpop_bound_access_tokens
        if signed_alg is not None:
            alg = None if signed_alg == "default" else signed_alg
            check_id_token_alg(alg, services().keys)
            client.id_token_signed_response_alg = alg
        data = _client_dict(client)
        services().clients.invalidate()  # and the servers, after the commit (Ctx.session)
    ctx.emit(data, lambda: f"updated {client_id}")


@clients.command("list")
@pass_ctx
def clients_list(ctx: Ctx) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        rows = [_client_dict(c) for c in service.list_clients(s)]
    ctx.emit(rows, lambda: table(rows, ["client_id", "type", "name"]))


@clients.command("delete")
@click.argument("client_id")
@pass_ctx
def clients_delete(ctx: Ctx, client_id: str) -> None:
    from idp.oauth import service

    with ctx.session() as s:
        service.delete_client(s, client_id)
    ctx.emit({"deleted": client_id}, f"deleted {client_id}")


@clients.command("subject")
@click.argument("client_id")
@click.option("--subject-type", type=click.Choice(["public", "pairwise"]), default=None)
@click.option("--sector-identifier-uri", default=None, help="Set it ('' removes it).")
@pass_ctx
def clients_subject(
    ctx: Ctx, client_id: str, subject_type: str | None, sector_identifier_uri: str | None
) -> None:
    """The sub the app sees (OIDC Core §8): public, or pairwise per sector (§8.1)."""
    from idp.extensions import services
    from idp.oauth import pairwise, service

    with ctx.session() as s:
        client = service.get_client(s, client_id)
        uri = pairwise.UNCHANGED if sector_identifier_uri is None else sector_identifier_uri
        pairwise.configure(services().config, client, subject_type, uri)
        data = _client_dict(client)
        services().clients.invalidate()
    ctx.emit(data, lambda: f"{client_id}: {data['subject_type']}")


@clients.command("backchannel-logout")
@click.argument("client_id")
@click.option("--uri", default=None, help="The backchannel_logout_uri ('' removes it).")
@click.option(
    "--session-required/--no-session-required",
    default=None,
    help="backchannel_logout_session_required (idp always sends sid).",
)
@pass_ctx
def clients_backchannel_logout(
    ctx: Ctx, client_id: str, uri: str | None, session_required: bool | None
) -> None:
    """Where a Logout Token is POSTed when a session of the app's ends (OIDC BCL §2.2)."""
    from idp.backchannel import service as backchannel
    from idp.extensions import services
    from idp.oauth import service
    from idp.oauth.client_features import refuse_switched_off

    with ctx.session() as s:
        client = service.get_client(s, client_id)
        refuse_switched_off(services().config, logout_uri=uri,
                            had_logout_uri=client.backchannel_logout_uri)  # fmt: skip
        backchannel.configure(client, ... if uri is None else uri, session_required)
        data = _client_dict(client)
        services().clients.invalidate()
    ctx.emit(data, lambda: f"{client_id}: {data['backchannel_logout_uri'] or 'none'}")
