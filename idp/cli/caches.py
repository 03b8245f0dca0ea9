"""``idp caches``: the running servers' per-worker caches (idp.core.versions)."""

from __future__ import annotations

import click

from idp.cli.context import Ctx, Group, pass_ctx


@click.group(cls=Group)
def caches() -> None:
    """The running servers' caches of clients, keys, actions and settings."""


@caches.command("flush")
@pass_ctx
def caches_flush(ctx: Ctx) -> None:
    """Make every worker of every instance reload what it caches (after a change written to
    the database by other means than idp's API and CLI, or one the servers were not told of).

    Example: idp caches flush"""
    from flask import current_app

    from idp.core.versions import FAMILIES

    with ctx.session():  # a bump Redis does not take fails the command (Ctx.session)
        versions = current_app.extensions["idp.versions"]
        for family in FAMILIES:
            versions.bump(family)
    ctx.emit({"flushed": list(FAMILIES)}, "flushed: " + ", ".join(FAMILIES))
