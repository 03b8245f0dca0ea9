"""``idp actions ...``: the operator's surface for Actions (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from idp.cli import actions_common as common
from idp.cli.context import Ctx, Group, pass_ctx


def _draft_options(f: Any) -> Any:
    f = click.option("--dependency", "dependencies", multiple=True, help="pip requirement")(f)
    f = click.option("--allow-host", "hosts", multiple=True, help="host api.http may call")(f)
    f = click.option("--timeout-ms", type=int, default=None)(f)
    return f


@click.group(cls=Group)
def actions() -> None:
    """Sandboxed operator code in each flow: drafts, versions, bindings, secrets, tests."""


@actions.command("create")
@click.argument("file", type=click.File("r"))
@click.option("--name", required=True)
@click.option("--trigger", required=True)
@_draft_options
@pass_ctx
def create(ctx: Ctx, file: Any, name: str, trigger: str, **draft: Any) -> None:
    """Create or update a draft from FILE (live traffic is not touched)."""
    from idp.actions import service
    from idp.extensions import services

    with ctx.session() as s, common.errors():
        limits = service.Limits.from_config(services().config)
        action = service.save_draft(
            s, limits, name, trigger=trigger, code=file.read(), **_draft_kwargs(draft)
        )
        data = common.action_dict(action)
    ctx.emit(data, f"draft of {name} saved ({data['id']})")


def _draft_kwargs(draft: dict[str, Any]) -> dict[str, Any]:
    return {
        "dependencies": list(draft["dependencies"]) if draft.get("dependencies") else None,
        "allowed_hosts": list(draft["hosts"]) if draft.get("hosts") else None,
        "timeout_ms": draft.get("timeout_ms"),
    }


@actions.command("deploy")
@click.argument("file", type=click.File("r"), required=False)
@click.option("--name", required=True)
@click.option("--trigger", default=None)
@click.option("--secret", "secrets", multiple=True, help="KEY=VALUE (stored encrypted)")
@_draft_options
@pass_ctx
def deploy(
    ctx: Ctx, file: Any, name: str, trigger: str | None, secrets: tuple[str, ...], **draft: Any
) -> None:
    """Create or update the draft from FILE (if given), then deploy it as a new version."""
    from idp.actions import service
    from idp.extensions import services

    given = common.pairs(secrets, "--secret")
    with ctx.session() as s, common.errors():
        svc = services()
        limits = service.Limits.from_config(svc.config)
        action = service.save_draft(
            s,
            limits,
            name,
            trigger=trigger,
            code=file.read() if file else None,
            **_draft_kwargs(draft),
        )
        for key, value in given.items():
            service.set_secret(s, svc.box, limits, action, key, value)
        version = service.deploy(s, limits, action, svc.actions.deps_root, common.operator())
        data = {
            "action": common.action_dict(action),
            "version": version.number,
            "status": version.build_status,
        }
    common.bump(ctx)
    text = f"{name} version {data['version']} deployed"
    if data["status"] == "building":
        text += f"; installing its dependencies (see `idp actions versions {name}`)"
    ctx.emit(data, text)


@actions.command("versions")
@click.argument("name")
@pass_ctx
def versions(ctx: Ctx, name: str) -> None:
    """History of deployed versions (who, when, build status; * marks the live one)."""
    from idp.actions import service

    with ctx.session() as s, common.errors():
        action = service.get_action(s, name)
        rows = [
            {
                "version": v.number,
                "live": v.number == action.live_version,
                "created_by": v.created_by,
                "created_at": v.created_at,
                "dependencies": v.dependencies,
                "status": v.build_status,  # building, built or failed (pip in the background)
                "error": v.build_error,
            }
            for v in service.versions(s, action)
        ]
    ctx.emit(
        rows,
        lambda: (
            "\n".join(
                f"{'*' if r['live'] else ' '} v{r['version']}  {r['created_at']}  {r['created_by']}"
                f"  {r['status']}" + (f": {r['error']}" if r["error"] else "")
                for r in rows
            )
            or "(no versions)"
        ),
    )


@actions.command("rollback")
@click.argument("name")
@click.argument("version", type=int)
@pass_ctx
def rollback(ctx: Ctx, name: str, version: int) -> None:
    """Make an earlier version live again."""
    from idp.actions import service

    with ctx.session() as s, common.errors():
        action = service.get_action(s, name)
        service.rollback(s, action, version)
    common.bump(ctx)
    ctx.emit({"name": name, "live_version": version}, f"{name} now runs version {version}")


@actions.command("bind")
@click.argument("name")
@click.option("--trigger", required=True)
@click.option("--position", type=int, default=None, help="0-based; the end by default")
@click.option("--allowed-to-fail", is_flag=True, help="an error skips this action")
@pass_ctx
def bind(ctx: Ctx, name: str, trigger: str, position: int | None, allowed_to_fail: bool) -> None:
    """Add NAME to TRIGGER's chain."""
    from idp.actions import service
    from idp.extensions import services

    with ctx.session() as s, common.errors():
        svc = services()
        action = service.get_action(s, name)
        limits = service.Limits.from_config(svc.config)
        service.bind(s, limits, action, trigger, position, allowed_to_fail)
        chain = [b.action_id for b in service.bindings(s, trigger)]
    common.bump(ctx)
    ctx.emit({"trigger": trigger, "chain": chain}, f"{name} bound to {trigger}")


@actions.command("unbind")
@click.argument("name")
@click.option("--trigger", required=True)
@pass_ctx
def unbind(ctx: Ctx, name: str, trigger: str) -> None:
    """Remove NAME from TRIGGER's chain."""
    from idp.actions import service

    with ctx.session() as s, common.errors():
        service.unbind(s, service.get_action(s, name), trigger)
    common.bump(ctx)
    ctx.emit({"trigger": trigger, "unbound": name}, f"{name} unbound from {trigger}")


@actions.command("move")
@click.argument("name")
@click.option("--trigger", required=True)
@click.option("--position", type=int, required=True, help="0-based")
@pass_ctx
def move(ctx: Ctx, name: str, trigger: str, position: int) -> None:
    """Move NAME to POSITION in TRIGGER's chain."""
    from idp.actions import service

    with ctx.session() as s, common.errors():
        service.move(s, service.get_action(s, name), trigger, position)
    common.bump(ctx)
    ctx.emit({"trigger": trigger, "moved": name, "position": position}, "moved")


@actions.command("list")
@click.option("--trigger", default=None)
@pass_ctx
def list_(ctx: Ctx, trigger: str | None) -> None:
    """Actions and, per trigger, the bound chain in order."""
    from idp.actions import service, triggers

    with ctx.session() as s, common.errors():
        positions = {
            b.action_id: b.position
            for t in ([trigger] if trigger else list(triggers.TRIGGERS))
            for b in service.bindings(s, t)
        }
        rows = [
            common.action_dict(a, positions.get(a.id)) for a in service.list_actions(s, trigger)
        ]
    ctx.emit(
        rows,
        lambda: (
            "\n".join(
                f"{r['name']:<32} {r['trigger']:<24} v{r['live_version'] or '-'}"
                f"  {'#' + str(r['bound_at']) if r['bound_at'] is not None else 'unbound'}"
                for r in rows
            )
            or "(no actions)"
        ),
    )


@actions.command("test")
@click.argument("name")
@click.option("--version", type=int, default=None, help="a deployed version; the draft by default")
@click.option("--event", "event_file", type=click.Path(exists=True, path_type=Path))
@pass_ctx
def test(ctx: Ctx, name: str, version: int | None, event_file: Path | None) -> None:
    """Run the draft (or a version) against the trigger's sample event or --event FILE."""
    from idp.actions import service
    from idp.actions.engine import link_for_test, run_test
    from idp.extensions import services

    event = json.loads(event_file.read_text()) if event_file else None
    with ctx.session() as s, common.errors():
        svc = services()
        action = service.get_action(s, name)
        link = link_for_test(s, svc.box, svc.actions.deps_root, action, version)
        trigger_id = action.trigger
        s.commit()  # never hold the database's write lock while an action runs
        try:
            result = run_test(svc.actions, trigger_id, link, event)
        finally:
            svc.actions.close()  # a CLI process keeps no sandbox behind
    ctx.emit(result, lambda: json.dumps(result, indent=2))


@actions.command("secrets")
@click.argument("name")
@click.option("--set", "to_set", multiple=True, help="KEY=VALUE")
@click.option("--delete", "to_delete", multiple=True, help="KEY")
@pass_ctx
def secrets_(ctx: Ctx, name: str, to_set: tuple[str, ...], to_delete: tuple[str, ...]) -> None:
    """List secret names (values are write-only), set or delete secrets."""
    from idp.actions import service
    from idp.extensions import services

    given = common.pairs(to_set, "--set")
    with ctx.session() as s, common.errors():
        svc = services()
        action = service.get_action(s, name)
        limits = service.Limits.from_config(svc.config)
        for key, value in given.items():
            service.set_secret(s, svc.box, limits, action, key, value)
        for key in to_delete:
            service.delete_secret(s, action, key)
        names = service.secret_names(s, action)
    common.bump(ctx)
    ctx.emit(names, lambda: "\n".join(names) or "(no secrets)")


@actions.command("executions")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20)
@pass_ctx
def executions(ctx: Ctx, name: str | None, limit: int) -> None:
    """Latest executions (all actions, or NAME with its counts and p50/p99)."""
    from idp.actions import service

    with ctx.session() as s, common.errors():
        action = service.get_action(s, name) if name else None
        rows = [
            {
                "id": e.id,
                "action_id": e.action_id,
                "version": e.version,
                "trigger": e.trigger,
                "request_id": e.request_id,
                "outcome": e.outcome,
                "duration_ms": e.duration_ms,
                "error": e.error,
                "logs": e.logs,
                "test": e.test,
                "created_at": e.created_at,
            }
            for e in service.executions(s, action, limit)
        ]
        data: dict[str, Any] = {"executions": rows}
        if action is not None:
            data["stats"] = service.stats(s, action)
    ctx.emit(
        data,
        lambda: (
            "\n".join([f"stats: {json.dumps(data['stats'])}"] if "stats" in data else [])
            + "\n".join(
                f"{r['created_at']} {r['id']} {r['trigger']} {r['outcome']:<10} "
                f"{r['duration_ms']:.1f}ms {r['error'] or ''}"
                for r in rows
            )
        ),
    )


@actions.command("schema")
@click.argument("trigger", required=False)
@pass_ctx
def schema(ctx: Ctx, trigger: str | None) -> None:
    """Published event and api shape of each trigger, with a sample event."""
    from idp.actions import triggers

    with common.errors():
        try:
            data = [
                triggers.schema(triggers.get(t))
                for t in ([trigger] if trigger else triggers.TRIGGERS)
            ]
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    ctx.emit(data, lambda: json.dumps(data, indent=2))


@actions.command("delete")
@click.argument("name")
@pass_ctx
def delete(ctx: Ctx, name: str) -> None:
    """Delete an action, its versions, secrets and bindings."""
    from idp.actions import service
    from idp.extensions import services

    with ctx.session() as s, common.errors():
        svc = services()
        service.delete_action(s, service.get_action(s, name), svc.actions.deps_root)
    common.bump(ctx)
    ctx.emit({"deleted": name}, f"{name} deleted")
