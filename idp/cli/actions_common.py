"""What ``idp actions`` and ``idp marketplace`` share: both create and deploy actions, so both
translate the Actions errors, parse ``KEY=VALUE`` options, print an action the same way and
tell the workers to reload their chains afterwards."""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from idp.cli.context import Ctx, translate


@contextmanager
def errors() -> Iterator[None]:
    """Actions' own errors (outside :class:`IdpError`) as a one-line ``Error: ...``."""
    from idp.actions.engine import ActionsFailed
    from idp.actions.service import ActionError, NotFound

    with translate(ActionError, NotFound, ActionsFailed):
        yield


def pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict; anything else is a usage error naming the option."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=what)
        out[key] = value
    return out


def action_dict(action: Any, chain_position: int | None = None) -> dict[str, Any]:
    """An action as the commands print it (``bound_at``: its place in its trigger's chain)."""
    return {
        "id": action.id,
        "name": action.name,
        "trigger": action.trigger,
        "live_version": action.live_version,
        "dependencies": action.dependencies,
        "allowed_hosts": action.allowed_hosts,
        "timeout_ms": action.timeout_ms,
        "marketplace": action.marketplace_slug,
        "bound_at": chain_position,
    }


def bump(ctx: Ctx) -> None:
    """After the commit: every worker on this machine reloads its chains. (``Ctx.session``'s
    watch has already moved the actions family's version, in Redis or this same stamp, and
    says when it could not; a read-only instance folder is no reason for a traceback here.)"""
    from idp.actions.service import bump_generation

    with contextlib.suppress(OSError):
        bump_generation(ctx.instance / "actions" / "generation")


def operator() -> str:
    """Who deployed, as a version records it: the local user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
