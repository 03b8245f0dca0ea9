"""Actions lifecycle: drafts, immutable versions, rollback, secrets, bindings (issue 4).

Versions are made and built in ``idp.actions.build`` (issue 11: dependencies install in the
background); binding or rolling back to a version that is not built is refused here.

Called by the CLI, the management API and tests alike; never touches ``flask.request``. Every
change that alters live traffic (deploy, rollback, bind, unbind, move, secrets, delete) bumps
the generation stamp so that every worker reloads its chains at once.
"""

from __future__ import annotations

import ast
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from idp.actions import build, triggers
from idp.actions.models import (
    Action,
    ActionBinding,
    ActionCacheEntry,
    ActionExecution,
    ActionSecret,
    ActionVersion,
)
from idp.core import clock
from idp.core.crypto import SecretBox, random_token

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,127}")
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?([<>=!~]=?[\w.*+!-]+)?")
HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.-]{0,252})(:\d{1,5})?")


class ActionError(ValueError):
    """Bad operator input; the message says what to fix."""


class NotFound(LookupError):
    pass


class NotBuilt(ActionError):
    """The version's dependencies are still being installed, or failed to install."""


@dataclass(frozen=True)
class Limits:
    per_trigger: int = 20
    code_bytes: int = 100_000
    secrets: int = 30
    secret_bytes: int = 4096
    versions: int = 50

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Limits:
        return cls(
            per_trigger=cfg["ACTIONS_MAX_PER_TRIGGER"],
            code_bytes=cfg["ACTIONS_MAX_CODE_BYTES"],
            secrets=cfg["ACTIONS_MAX_SECRETS"],
            secret_bytes=cfg["ACTIONS_MAX_SECRET_BYTES"],
            versions=cfg["ACTIONS_MAX_VERSIONS"],
        )


def bump_generation(stamp: Path) -> None:
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(random_token(8))


def check_code(code: str, trigger_id: str, limits: Limits) -> None:
    """Deploy-time checks (ARCHITECTURE.md §11): size, syntax, and the entry point exists."""
    trigger = triggers.get(trigger_id)
    if len(code.encode()) > limits.code_bytes:
        raise ActionError(f"the code is larger than {limits.code_bytes} bytes")
    try:
        tree = ast.parse(code, filename="action.py")
    except SyntaxError as exc:
        raise ActionError(f"syntax error on line {exc.lineno}: {exc.msg}") from None
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if trigger.entry not in functions:
        raise ActionError(f"the code must define {trigger.entry}(event, api)")


def get_action(session: Session, name_or_id: str) -> Action:
    action = session.scalar(
        select(Action).where((Action.name == name_or_id) | (Action.id == name_or_id))
    )
    if action is None:
        raise NotFound(f"no action named {name_or_id!r}")
    return action


def list_actions(session: Session, trigger_id: str | None = None) -> list[Action]:
    query = select(Action).order_by(Action.name)
    if trigger_id:
        query = query.where(Action.trigger == triggers.get(trigger_id).id)
    return list(session.scalars(query))


def save_draft(
    session: Session,
    limits: Limits,
    name: str,
    *,
    trigger: str | None = None,
    code: str | None = None,
    dependencies: list[str] | None = None,
    allowed_hosts: list[str] | None = None,
    configuration: dict[str, Any] | None = None,
    timeout_ms: int | None = None,
    marketplace_slug: str | None = None,
) -> Action:
    """Create or update the draft. Live traffic keeps running the deployed version."""
    if not NAME.fullmatch(name):
        raise ActionError("a name is 1-128 letters, digits, spaces, '_', '.' or '-'")
    action = session.scalar(select(Action).where(Action.name == name))
    now = clock.now()
    if action is None:
        if trigger is None or code is None:
            raise ActionError("a new action needs a trigger and code")
        triggers.get(trigger)
        action = Action(
            id="act_" + random_token(12),
            name=name,
            trigger=trigger,
            code=code,
            created_at=now,
            dependencies=[],
            allowed_hosts=[],
            configuration={},
            timeout_ms=5000,
        )
        session.add(action)
    elif trigger is not None and trigger != action.trigger:
        raise ActionError(f"{name!r} belongs to {action.trigger}; its trigger cannot change")
    if code is not None:
        action.code = code
    check_code(action.code, action.trigger, limits)
    if dependencies is not None:
        for line in dependencies:
            if not REQUIREMENT.fullmatch(line.strip()):
                raise ActionError(f"not a plain requirement line: {line!r}")
        action.dependencies = [line.strip() for line in dependencies]
    if allowed_hosts is not None:
        for host in allowed_hosts:
            if not HOST.fullmatch(host.lower()):
                raise ActionError(f"not a host name: {host!r}")
        action.allowed_hosts = [h.lower() for h in allowed_hosts]
    if configuration is not None:
        action.configuration = dict(configuration)
    if timeout_ms is not None:
        if not 100 <= timeout_ms <= 20_000:
            raise ActionError("the timeout is between 100 and 20000 ms")
        action.timeout_ms = timeout_ms
    if marketplace_slug is not None:
        action.marketplace_slug = marketplace_slug
    action.updated_at = now
    session.flush()
    return action


def deploy(
    session: Session, limits: Limits, action: Action, deps_root: Path, by: str
) -> ActionVersion:
    """Freeze the draft into the next numbered, immutable version. Without dependencies it
    is live at once; with them it is ``building`` until pip has installed them in the
    background (``idp.actions.build``), and goes live then."""
    check_code(action.code, action.trigger, limits)
    return build.new_version(session, limits.versions, action, deps_root, by)


def require_built(action: Action, version: ActionVersion) -> None:
    """Refuse to run, bind or roll back to a version whose dependencies are not installed."""
    reason = build.refusal(action.name, version)
    if reason is not None:
        raise NotBuilt(reason)


def versions(session: Session, action: Action) -> list[ActionVersion]:
    return list(
        session.scalars(
            select(ActionVersion)
            .where(ActionVersion.action_id == action.id)
            .order_by(ActionVersion.number.desc())
        )
    )


def rollback(session: Session, action: Action, number: int) -> ActionVersion:
    """Make an earlier version live again (its code and dependencies are unchanged)."""
    version = session.scalar(
        select(ActionVersion).where(
            ActionVersion.action_id == action.id, ActionVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"{action.name!r} has no version {number}")
    require_built(action, version)
    action.live_version = number
    action.updated_at = clock.now()
    return version


def live_version(session: Session, action: Action) -> ActionVersion | None:
    if action.live_version is None:
        return None
    return session.scalar(
        select(ActionVersion).where(
            ActionVersion.action_id == action.id, ActionVersion.number == action.live_version
        )
    )


def set_secret(
    session: Session, box: SecretBox, limits: Limits, action: Action, name: str, value: str
) -> None:
    if not SECRET_NAME.fullmatch(name):
        raise ActionError("a secret name is a letter or '_' then letters, digits or '_'")
    if len(value.encode()) > limits.secret_bytes:
        raise ActionError(f"a secret value is at most {limits.secret_bytes} bytes")
    row = session.get(ActionSecret, (action.id, name))
    if row is None:
        count = session.scalar(
            select(func.count())
            .select_from(ActionSecret)
            .where(ActionSecret.action_id == action.id)
        )
        if (count or 0) >= limits.secrets:
            raise ActionError(f"an action has at most {limits.secrets} secrets")
        row = ActionSecret(action_id=action.id, name=name, ciphertext=b"", updated_at=0)
        session.add(row)
    row.ciphertext = box.encrypt(value.encode())
    row.updated_at = clock.now()


def delete_secret(session: Session, action: Action, name: str) -> None:
    row = session.get(ActionSecret, (action.id, name))
    if row is None:
        raise NotFound(f"{action.name!r} has no secret {name!r}")
    session.delete(row)


def secret_names(session: Session, action: Action) -> list[str]:
    return list(
        session.scalars(
            select(ActionSecret.name)
            .where(ActionSecret.action_id == action.id)
            .order_by(ActionSecret.name)
        )
    )


def secrets_of(session: Session, box: SecretBox, action_id: str) -> dict[str, str]:
    rows = session.scalars(select(ActionSecret).where(ActionSecret.action_id == action_id))
    return {row.name: box.decrypt(row.ciphertext).decode() for row in rows}


def bindings(session: Session, trigger_id: str) -> list[ActionBinding]:
    return list(
        session.scalars(
            select(ActionBinding)
            .where(ActionBinding.trigger == triggers.get(trigger_id).id)
            .order_by(ActionBinding.position)
        )
    )


def _renumber(chain: list[ActionBinding]) -> None:
    for index, binding in enumerate(chain):
        binding.position = index


def bind(
    session: Session,
    limits: Limits,
    action: Action,
    trigger_id: str,
    position: int | None = None,
    allowed_to_fail: bool = False,
) -> ActionBinding:
    """Insert one binding into the trigger's chain (at the end unless told), 0-based."""
    if action.trigger != triggers.get(trigger_id).id:
        raise ActionError(f"{action.name!r} is a {action.trigger} action, not {trigger_id}")
    if action.live_version is None:  # the live version is always a built one
        pending = build.newest(session, action)
        if pending is not None:
            require_built(action, pending)
        raise ActionError(f"deploy {action.name!r} before binding it")
    if allowed_to_fail and triggers.get(trigger_id).always_fail_closed:
        raise ActionError(f"{trigger_id} always fails closed; allowed_to_fail is refused")
    chain = bindings(session, trigger_id)
    if any(b.action_id == action.id for b in chain):
        raise ActionError(f"{action.name!r} is already bound to {trigger_id}")
    if len(chain) >= limits.per_trigger:
        raise ActionError(f"{trigger_id} has the maximum of {limits.per_trigger} actions")
    binding = ActionBinding(
        id="bnd_" + random_token(12),
        trigger=trigger_id,
        action_id=action.id,
        position=0,
        allowed_to_fail=allowed_to_fail,
        created_at=clock.now(),
    )
    session.add(binding)
    index = len(chain) if position is None else max(0, min(position, len(chain)))
    chain.insert(index, binding)
    _renumber(chain)
    session.flush()
    return binding


def unbind(session: Session, action: Action, trigger_id: str) -> None:
    chain = bindings(session, trigger_id)
    kept = [b for b in chain if b.action_id != action.id]
    if len(kept) == len(chain):
        raise NotFound(f"{action.name!r} is not bound to {trigger_id}")
    session.execute(
        delete(ActionBinding).where(
            ActionBinding.trigger == trigger_id, ActionBinding.action_id == action.id
        )
    )
    _renumber(kept)


def move(session: Session, action: Action, trigger_id: str, position: int) -> None:
    chain = bindings(session, trigger_id)
    current = next((b for b in chain if b.action_id == action.id), None)
    if current is None:
        raise NotFound(f"{action.name!r} is not bound to {trigger_id}")
    chain.remove(current)
    chain.insert(max(0, min(position, len(chain))), current)
    _renumber(chain)


def delete_action(session: Session, action: Action, deps_root: Path) -> None:
    for version in versions(session, action):
        if version.deps_dir:
            shutil.rmtree(deps_root / version.deps_dir, ignore_errors=True)
    session.execute(delete(ActionBinding).where(ActionBinding.action_id == action.id))
    session.execute(
        delete(ActionCacheEntry).where(
            ActionCacheEntry.action_id.in_([action.id, action.id + ":test"])
        )
    )
    session.delete(action)


def executions(
    session: Session, action: Action | None = None, limit: int = 50
) -> list[ActionExecution]:
    query = select(ActionExecution).order_by(ActionExecution.created_at.desc()).limit(limit)
    if action is not None:
        query = query.where(ActionExecution.action_id == action.id)
    return list(session.scalars(query))


def stats(session: Session, action: Action, sample: int = 1000) -> dict[str, Any]:
    """Counts, errors and p50/p99 duration over the latest ``sample`` live executions."""
    rows = session.execute(
        select(ActionExecution.outcome, ActionExecution.duration_ms)
        .where(ActionExecution.action_id == action.id, ActionExecution.test.is_(False))
        .order_by(ActionExecution.created_at.desc())
        .limit(sample)
    ).all()
    durations = sorted(r.duration_ms for r in rows)

    def pct(p: float) -> float | None:
        return round(durations[min(len(durations) - 1, int(p * len(durations)))], 2) if (
            durations
        ) else None  # fmt: skip

    return {
        "executions": len(rows),
        "errors": sum(1 for r in rows if r.outcome not in {"success", "denied"}),
        "denied": sum(1 for r in rows if r.outcome == "denied"),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }
