"""``idp marketplace ...``: list the reviewed plugins and install one as an ordinary action
(the plugins themselves are read and installed by :mod:`idp.actions.marketplace`)."""

from __future__ import annotations

from typing import Any

import click

from idp.cli import actions_common as common
from idp.cli.context import Ctx, Group, pass_ctx


@click.group(cls=Group)
def marketplace() -> None:
    """Reviewed, ready-made actions (plugins/actions/<slug>/): list and install."""


@marketplace.command("list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """Plugins with their trigger and settings."""
    from idp.actions.marketplace import catalog

    with common.errors():
        rows = [
            {
                "slug": p.slug,
                "title": p.title,
                "version": p.version,
                "trigger": p.trigger,
                "description": p.description,
                "config": [c.__dict__ for c in p.config],
                "secrets": [s.__dict__ for s in p.secrets],
            }
            for p in catalog()
        ]
    ctx.emit(
        rows,
        lambda: (
            "\n".join(f"{r['slug']:<24} {r['trigger']:<24} {r['title']}" for r in rows)
            or "(no plugins)"
        ),
    )


@marketplace.command("install")
@click.argument("slug")
@click.option("--name", default=None, help="the action's name; the slug by default")
@click.option("--config", "config", multiple=True, help="KEY=VALUE (lists: a,b,c)")
@click.option("--secret", "secrets", multiple=True, help="KEY=VALUE (stored encrypted)")
@click.option("--bind", is_flag=True, help="add it to the end of its trigger's chain")
@pass_ctx
def install(
    ctx: Ctx,
    slug: str,
    name: str | None,
    config: tuple[str, ...],
    secrets: tuple[str, ...],
    bind: bool,
) -> None:
    """Install SLUG as an ordinary action (deployed; bound with --bind)."""
    from idp.actions import marketplace as plugins
    from idp.actions import service
    from idp.extensions import services

    given, secret_values = common.pairs(config, "--config"), common.pairs(secrets, "--secret")
    with ctx.session() as s, common.errors():
        svc = services()
        plugin = plugins.get(slug)
        action, version = plugins.install(
            s, service.Limits.from_config(svc.config), svc.box, svc.actions.deps_root, plugin,
            name=name, config=given, secrets=secret_values, bind=bind, by=common.operator(),
        )  # fmt: skip
        position = next(
            (b.position for b in service.bindings(s, plugin.trigger) if b.action_id == action.id),
            None,
        )
        data: dict[str, Any] = {
            "action": common.action_dict(action, position),
            "configuration": action.configuration,
            "version": version.number,
            "plugin": {"slug": plugin.slug, "version": plugin.version},
        }
    common.bump(ctx)  # after the commit: workers reload with the new version in place
    where = f", bound to {plugin.trigger}" if position is not None else " (not bound)"
    ctx.emit(data, f"{data['action']['name']} version {data['version']} deployed{where}")
