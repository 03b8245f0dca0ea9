"""``idp connections ...``: the ways users sign in (create, update, delete, list, show, enable
and disable per app). Secrets are write-only: no command prints them (``(set)`` instead)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from idp.cli.context import Ctx, Group, pass_ctx, table


def _connection_dict(session: Any, connection: Any) -> dict[str, Any]:
    """A connection as the commands print it: options public (a secret is "(set)", never its
    value nor its sealed form)."""
    from flask import current_app

    from idp.connections import samlp, service, strategies

    view = service.connection_view(session, connection)
    if strategies.is_upstream(connection.strategy):  # what to register at the upstream
        issuer = str(current_app.config["ISSUER"]).rstrip("/")
        view["redirect_uri"] = f"{issuer}/login/callback/{connection.name}"
        if samlp.is_samlp(connection):  # the SP the IdP's operator registers
            view["sp"] = samlp.sp_info(connection, issuer)
    return view


def _value(value: Any) -> str:
    """An option for the text output: a certificate or a metadata document is named, not
    printed (``--json`` has them whole)."""
    if isinstance(value, str) and value.lstrip().startswith(("-----BEGIN", "<")):
        return f"({len(value)} characters; --json shows it)"
    return json.dumps(value)


def _show(data: dict[str, Any]) -> str:
    clients = ", ".join(data["enabled_clients"]) or "(none)"
    options = "".join(f"\n  {k}: {_value(v)}" for k, v in sorted(data["options"].items()))
    return (
        f"name: {data['name']}\nid: {data['id']}\nstrategy: {data['strategy']}\n"
        f"display_name: {data['display_name'] or ''}\nposition: {data['position']}\n"
        f"enabled_clients: {clients}\noptions:{options or ' (none)'}"
        + (f"\nredirect_uri: {data['redirect_uri']}" if data.get("redirect_uri") else "")
        + (_show_sp(data) if data.get("sp") else "")
    )


def _show_sp(data: dict[str, Any]) -> str:
    """samlp: what to give the IdP's operator, and the IdP certificates idp trusts."""
    sp = data["sp"]
    pinned = ", ".join(data["options"].get("idp_certificates", [])) or "(none)"
    return (
        f"\nsp_metadata_url: {sp['metadata_url']}\nsp_entity_id: {sp['entity_id']}\n"
        f"acs_url: {sp['acs_url']}\nslo_url: {sp['slo_url']}\n"
        f"sp_certificate_sha256: {sp['certificate_fingerprint']}\n"
        f"idp_certificates_sha256: {pinned}"
    )


# (flag, option) of the options that are one string; the option names are the strategies'
# (idp.connections.strategies.OPTIONS), which refuse an option the strategy does not take.
_TEXT = [
    ("--issuer", "issuer"), ("--client-id", "client_id"), ("--icon-url", "icon_url"),
    ("--domain-hint", "domain_hint"), ("--token-auth-method", "token_endpoint_auth_method"),
    ("--key-id", "key_id"), ("--team-id", "team_id"), ("--response-mode", "response_mode"),
    ("--authorization-url", "authorization_url"), ("--token-url", "token_url"),
    ("--profile-url", "profile_url"), ("--emails-url", "emails_url"),
    ("--metadata-url", "metadata_url"), ("--default-client-id", "default_client_id"),
    ("--request-binding", "request_binding"),
]  # fmt: skip
_BOOL = [("trust-email-verified", "trust_email_verified"), ("keep-tokens", "keep_tokens"),
         ("userinfo", "userinfo"), ("sign-requests", "sign_requests"),
         ("allow-sha1", "allow_sha1"), ("idp-initiated", "idp_initiated"),
         ("email-verified", "email_verified")]  # fmt: skip
# samlp's repeatable flags that give a list option.
_LISTS = [("--domain", "domains", "samlp: an email domain sent to this IdP (repeatable)."),
          ("--fingerprint", "idp_certificates", "samlp: the SHA-256 fingerprint of an IdP "
           "signing certificate to pin; it must be in the metadata (repeatable).")]  # fmt: skip
_PAIRS = [
    ("--authorization-param", "authorization_params", "Extra upstream authorize parameter, "
     "k=v (repeatable)."),
    ("--map", "map", "oauth2: a profile field from a dotted path, user_id=id; samlp: from a "
     "SAML attribute, email=ATTR (repeatable)."),
]  # fmt: skip
STDIN = "-"  # --client-secret - reads the secret from stdin
STDIN_FLAG_HELP = (
    "The client secret at the upstream; '-' reads it from stdin (keeps it out of the shell "
    'history: printf %s "$SECRET" | idp connections create ... --client-secret -).'
)


def _option_flags(f: Any) -> Any:
    """The flags that set a connection's options (create and update share them)."""
    decorators = [
        *(click.option(flag, name, default=None, help=f"Option {name}.") for flag, name in _TEXT),
        click.option("--client-secret", default=None, help=STDIN_FLAG_HELP),
        click.option("--private-key-file", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="PEM key for private_key_jwt or Apple's secret."),
        click.option("--scope", "scopes", multiple=True, help="Scope asked upstream (repeatable)."),
        click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="samlp: the IdP's metadata XML (instead of a URL)."),
        *(click.option(flag, name, multiple=True, help=text) for flag, name, text in _LISTS),
        *(click.option(f"--{flag}/--no-{flag}", name, default=None, help=f"Option {name}.")
          for flag, name in _BOOL),
        *(click.option(flag, name, multiple=True, help=text) for flag, name, text in _PAIRS),
        click.option("--display-name", default=None, help="Shown on the login button."),
        click.option("--position", type=click.IntRange(min=0), default=None,
                     help="Order on the login page (0 first)."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def _pairs(flag: str, values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.ClickException(f"{flag} takes name=value, not {value!r}")
        out[key] = rest
    return out


def _options(flags: dict[str, Any]) -> dict[str, Any]:
    """The options the flags give (absent flags give nothing: update leaves them as they are)."""
    options = {name: flags[name] for _, name in _TEXT if flags[name] is not None}
    options.update({name: flags[name] for _, name in _BOOL if flags[name] is not None})
    for flag, name, _ in _PAIRS:
        if flags[name]:
            options[name] = _pairs(flag, flags[name])
    if flags["scopes"]:
        options["scopes"] = list(flags["scopes"])
    options.update({name: list(flags[name]) for _, name, _ in _LISTS if flags[name]})
    if flags["metadata_file"]:
        options["metadata_xml"] = _read(flags["metadata_file"], "--metadata-file")
    secret = flags["client_secret"]
    if secret == STDIN:
        secret = sys.stdin.read().rstrip("\r\n")
        if not secret:
            raise click.ClickException("--client-secret -: nothing on stdin")
    if secret is not None:
        options["client_secret"] = secret
    if flags["private_key_file"]:
        options["private_key"] = _read(flags["private_key_file"], "--private-key-file")
    return options


def _read(path: str, flag: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{flag}: {exc}") from None


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
    running servers notice at their next version check)."""
    from idp.connections import service

    with ctx.session() as s:
        service.disable(s, name, client_id)
        s.flush()
        data = _connection_dict(s, service.get_connection(s, name))
    ctx.emit(data, f"{name} disabled for {client_id}")


@connections.command("create")
@click.option("--strategy", required=True, help="oidc, oauth2, samlp or a preset (google, "
              "github, ...).")  # fmt: skip
@click.option("--name", required=True, help="Unique: a-z, 0-9 and '-'.")
@_option_flags
@click.option("--enable-for", "enable_for", multiple=True, help="Enable it for this app "
              "(client id, repeatable).")  # fmt: skip
@pass_ctx
def connections_create(
    ctx: Ctx, strategy: str, name: str, display_name: str | None, position: int | None,
    enable_for: tuple[str, ...], **flags: Any,
) -> None:  # fmt: skip
    """Create a connection. A preset fills its options; the flags given override them (URLs
    included). Its secrets are stored sealed. samlp: the SP's key pair is generated and the
    metadata's signing certificates pinned (or the --fingerprint ones, checked)."""
    from idp.connections import samlp, service
    from idp.extensions import services

    options = _options(flags)
    with ctx.session() as s:
        metadata = samlp.prefetch(s, options, strategy=strategy)
        connection = service.create_connection(
            s, name=name, strategy=strategy, display_name=display_name, options=options,
            position=position, box=services().box, metadata=metadata,
        )  # fmt: skip
        s.flush()
        for client_id in enable_for:
            service.enable(s, name, client_id)
        s.flush()
        data = _connection_dict(s, connection)
    ctx.emit(data, lambda: _show(data))


@connections.command("update")
@click.argument("name")
@_option_flags
@click.option("--unset", "unset", multiple=True, help="Remove this option (repeatable); a "
              "preset's option goes back to the preset's value.")  # fmt: skip
@pass_ctx
def connections_update(
    ctx: Ctx, name: str, display_name: str | None, position: int | None,
    unset: tuple[str, ...], **flags: Any,
) -> None:  # fmt: skip
    """Change a connection's options (merged onto the stored ones and validated again), its
    display name ('' removes it) or position. Its name and strategy stay."""
    from idp.connections import samlp, service
    from idp.extensions import services

    options: dict[str, Any] = {**_options(flags), **dict.fromkeys(unset)}
    if not options and display_name is None and position is None:
        raise click.ClickException("nothing to update: give at least one option")
    with ctx.session() as s:
        metadata = samlp.prefetch(s, options, name=name)
        connection = service.update_connection(
            s, name, display_name=display_name, options=options, position=position,
            box=services().box, metadata=metadata,
        )  # fmt: skip
        s.flush()
        data = _connection_dict(s, connection)
    ctx.emit(data, lambda: _show(data))


@connections.command("rotate-certificate")
@click.argument("name")
@pass_ctx
def connections_rotate_certificate(ctx: Ctx, name: str) -> None:
    """samlp: a new SP key and certificate for NAME (the previous pair is kept, one generation,
    to open assertions still encrypted to it). Give the IdP the new SP metadata."""
    from idp.connections import samlp
    from idp.extensions import services

    with ctx.session() as s:
        connection = samlp.rotate_certificate(s, name, services().box)
        s.flush()
        data = _connection_dict(s, connection)
    ctx.emit(data, lambda: _show(data))


@connections.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the users' identities at it (never "
              "a user's last one).")  # fmt: skip
@pass_ctx
def connections_delete(ctx: Ctx, name: str, force: bool) -> None:
    """Delete a connection (never 'database'). Identities at it block this unless --force."""
    from idp.connections import service

    with ctx.session() as s:
        service.delete_connection(s, name, force=force)
    ctx.emit({"deleted": name}, f"deleted {name}")
