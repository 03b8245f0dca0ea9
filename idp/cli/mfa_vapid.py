"""``idp mfa vapid show``: the instance's VAPID public key (RFC 8292 §3.2), the key a push
service sees in every Web Push request and a web authenticator subscribes with. ``idp init``
makes the key pair; the private half stays encrypted in the database (idp.mfa.webpush)."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx


@click.group(cls=Group)
def vapid() -> None:
    """The Web Push (VAPID) key of push approval."""


@vapid.command("show")
@pass_ctx
def show(ctx: Ctx) -> None:
    """Print the VAPID public key (base64url, uncompressed P-256 point) and the contact."""
    from idp.extensions import services
    from idp.mfa import webpush

    with ctx.session() as s:
        svc = services()
        key = webpush.ensure_vapid_key(s, svc.box)
        public_key = key.public_key
        data = {"public_key": public_key, "created_at": key.created_at,
                "subject": webpush.subject(svc.config)}  # fmt: skip
    ctx.emit(data, public_key)
