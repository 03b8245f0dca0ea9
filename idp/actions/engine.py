"""Running a trigger's chain: load the bound live versions, run each in the sandbox, validate
its commands, record the execution, and fail closed (ARCHITECTURE.md §7 and §11).

Chains are cached per worker and reloaded when the ``actions`` version moves
(:mod:`idp.core.versions`: the generation stamp file on one machine, one ``stat`` per chain
run; a Redis counter across instances) or after ``ACTIONS_CHAIN_CACHE_SECONDS``, so a token
request with no bound action opens no database session at all.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.actions import rpc, triggers
from idp.actions.commands import CommandError, Effects, apply_commands
from idp.actions.models import Action, ActionBinding, ActionExecution, ActionVersion
from idp.actions.records import RecordWriter, record
from idp.actions.runner.pool import Runner
from idp.actions.runner.sandbox import Limits, Outcome, SandboxError
from idp.actions.service import secrets_of
from idp.actions.store import CacheStore
from idp.core import http, tracing
from idp.core.crypto import SecretBox
from idp.core.versions import ACTIONS, FileVersions, Versions
from idp.ops import metrics

log = logging.getLogger(__name__)


class ActionsFailed(Exception):
    """A blocking chain failed closed; ``description`` is safe to show to an app or a person."""

    def __init__(self, description: str, error: str = "access_denied") -> None:
        super().__init__(description)
        self.description = description
        self.error = error


@dataclass(frozen=True)
class Link:
    action_id: str
    name: str
    version: int
    code: str
    deps: Path | None
    allowed_hosts: tuple[str, ...]
    configuration: dict[str, Any]
    timeout_ms: int
    allowed_to_fail: bool
    secrets: dict[str, str]


@dataclass
class ChainResult:
    effects: Effects
    execution_ids: list[str] = field(default_factory=list)
    paused_at: Link | None = None  # the link whose api.redirect.send_user_to paused the chain


class ActionsEngine:
    def __init__(
        self,
        config: dict[str, Any],
        box: SecretBox,
        instance: Path,
        session_factory: Callable[[], Any],
        versions: Versions | None = None,
    ) -> None:
        self.config = config
        self.box = box
        self.runner = Runner(
            insecure_dev=bool(config["ACTIONS_INSECURE_DEV"]),
            concurrency=int(config["ACTIONS_CONCURRENCY"]),
            metered=bool(config.get("METRICS_ENABLED")),
        )
        self.stamp = instance / "actions" / "generation"  # FileVersions' stamp of the family
        self.versions = versions if versions is not None else FileVersions(instance)
        self.deps_root = instance / "actions" / "deps"
        self.transaction = session_factory
        self.networks = http.parse_networks(str(config["ACTIONS_ALLOW_PRIVATE_NETWORKS"]))
        self.memory = int(config["ACTIONS_MEMORY_MB"]) * 1024 * 1024
        self.budget_ms = int(config["ACTIONS_TRIGGER_BUDGET_MS"])
        self.cache = CacheStore(session_factory)
        self._chains: dict[str, tuple[float, str, list[Link]]] = {}
        self._lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="actions")
        self._pending = threading.BoundedSemaphore(256)
        self.records = RecordWriter(session_factory)

    def close(self) -> None:
        """Stop this process's sandboxes (tests, and app teardown)."""
        self._background.shutdown(wait=True)
        self.records.flush()
        self.runner.close()

    def submit(self, job: Callable[[], None]) -> bool:
        """Run a non-blocking trigger's chain in the background (bounded: a flood is dropped
        and logged rather than growing memory)."""
        if not self._pending.acquire(blocking=False):
            log.error("the background actions queue is full: an execution was dropped")
            return False

        def wrapped() -> None:
            try:
                job()
            except Exception:
                log.exception("background action chain failed")
            finally:
                self._pending.release()

        self._background.submit(wrapped)
        return True

    # ------------------------------------------------------------------ chain loading
    def _stamp(self) -> str:
        return self.versions.current(ACTIONS)

    def bump(self) -> None:
        """A deployment, rollback, binding or secret changed (after the commit): every worker
        of every instance reloads its chains."""
        self.versions.bump(ACTIONS)

    def chain(
        self, trigger_id: str, session: Session | Callable[[], Session] | None = None
    ) -> list[Link]:
        """The bound chain. ``session``: the caller's session (or a function giving it, so a
        hot path that hits the cache never creates one), used for the read-only load, since
        a second transaction would wait on SQLite's one writer."""
        stamp = self._stamp()
        ttl = float(self.config["ACTIONS_CHAIN_CACHE_SECONDS"])
        cached = self._chains.get(trigger_id)
        if cached and cached[1] == stamp and time.monotonic() - cached[0] < ttl:
            return cached[2]
        if session is not None:
            links = self._load(session() if callable(session) else session, trigger_id)
        else:
            with self.transaction() as own:
                links = self._load(own, trigger_id)
        for link in links:
            if link.deps is not None and not link.deps.is_dir():
                # built by another instance: the sandbox cannot start, the chain fails closed
                log.error(
                    "action %s v%s: its dependencies are not in %s on this instance; share "
                    "that folder between instances (docs/design-notes.md, Several instances)",
                    link.name, link.version, self.deps_root,
                )  # fmt: skip
        with self._lock:
            self._chains[trigger_id] = (time.monotonic(), stamp, links)
        return links

    def _load(self, session: Session, trigger_id: str) -> list[Link]:
        rows = session.execute(
            select(ActionBinding, Action, ActionVersion)
            .join(Action, Action.id == ActionBinding.action_id)
            .join(
                ActionVersion,
                (ActionVersion.action_id == Action.id)
                & (ActionVersion.number == Action.live_version),
            )
            .where(ActionBinding.trigger == trigger_id)
            .order_by(ActionBinding.position)
        ).all()
        return [
            Link(
                action_id=action.id,
                name=action.name,
                version=version.number,
                code=version.code,
                deps=self.deps_root / version.deps_dir if version.deps_dir else None,
                allowed_hosts=tuple(action.allowed_hosts),
                configuration=dict(action.configuration),
                timeout_ms=action.timeout_ms,
                allowed_to_fail=binding.allowed_to_fail,
                secrets=secrets_of(session, self.box, action.id),
            )
            for binding, action, version in rows
        ]

    # ------------------------------------------------------------------ running
    def has_chain(
        self, trigger_id: str, session: Session | Callable[[], Session] | None = None
    ) -> bool:
        return bool(self.chain(trigger_id, session))

    def run(
        self,
        trigger_id: str,
        event: dict[str, Any],
        *,
        request_id: str | None = None,
        client_id: str | None = None,
        user_id: str | None = None,
        interactive: bool = True,
        state: str | None = None,
        links: list[Link] | None = None,
        entry: str | None = None,
        effects: Effects | None = None,
        redact: dict[str, str] | None = None,
    ) -> ChainResult:
        """Run the chain in order; a deny stops it. Raises :class:`ActionsFailed` when closed.
        ``redact``: values (tokens the event carries) scrubbed from the records like secrets."""
        trigger = triggers.get(trigger_id)
        chain = self.chain(trigger_id) if links is None else links
        result = ChainResult(effects or Effects())
        if not chain:
            return result
        started = time.monotonic()
        records: list[ActionExecution] = []
        try:
            for link in chain:
                remaining = self.budget_ms / 1000 - (time.monotonic() - started)
                if remaining <= 0.05:
                    raise ActionsFailed("the actions of this flow ran out of time")
                with tracing.span(f"action {link.name}", {
                    "idp.action.trigger": trigger_id, "idp.action.name": link.name,
                    "idp.action.id": link.action_id, "idp.action.version": link.version,
                }) as span:  # fmt: skip
                    began = time.perf_counter()
                    outcome, error = self._run_link(
                        trigger, link, event, min(link.timeout_ms / 1000, remaining), interactive,
                        state, entry if link is chain[0] else None, result.effects,
                    )  # fmt: skip
                    outcome.ms = (time.perf_counter() - began) * 1000
                    scrubbed = replace(link, secrets={**link.secrets, **redact}) if redact else link
                    records.append(
                        record(trigger_id, scrubbed, outcome, error, request_id, client_id, user_id)
                    )
                    span.set_attribute("idp.action.outcome", records[-1].outcome)
                result.execution_ids.append(records[-1].id)
                if self.runner.metered:
                    metrics.action_ran(trigger_id, link.name, records[-1].outcome, outcome.ms / 1e3)
                if error is not None:
                    if link.allowed_to_fail and not trigger.always_fail_closed:
                        continue
                    raise ActionsFailed(
                        f"the action {link.name!r} failed", _oauth_error(error, trigger_id)
                    )
                if result.effects.redirect is not None:
                    result.paused_at = link
                    break
                if result.effects.deny is not None:
                    break
        finally:
            self.records.save_later(records)
        return result

    def _run_link(
        self,
        trigger: triggers.Trigger,
        link: Link,
        event: dict[str, Any],
        timeout: float,
        interactive: bool,
        state: str | None,
        entry: str | None,
        effects: Effects,
    ) -> tuple[Outcome, str | None]:
        job = {
            "trigger": trigger.id,
            "entry": entry or trigger.entry,
            "code": link.code,
            "event": event,
            "secrets": link.secrets,
            "configuration": link.configuration,
            "api": [m for m in trigger.methods if not m.startswith("cache.")],
            "features": ["http"],
            "interactive": interactive,
            "state": state,
        }
        limits = Limits(
            timeout=timeout, memory=self.memory, cpu_ceiling=int(self.budget_ms / 1000) + 1
        )
        try:
            serve = rpc.server(
                self.cache, link.action_id, link.allowed_hosts, self.networks, timeout
            )
            outcome = self.runner.run(job, limits, link.deps, serve)
        except SandboxError as exc:
            return Outcome([], "", {"kind": "sandbox", "message": str(exc)}, 0.0), str(exc)
        if outcome.error is not None:
            return outcome, f"{outcome.error.get('kind')}: {outcome.error.get('message', '')}"
        snapshot = copy.deepcopy(effects)
        try:
            apply_commands(effects, trigger.id, trigger.methods, outcome.commands, interactive)
        except CommandError as exc:
            effects.__dict__.update(snapshot.__dict__)
            log.warning("action %s returned an invalid command: %s", link.name, exc)
            return outcome, f"invalid command: {exc}"
        return outcome, None


def _oauth_error(error: str, trigger_id: str) -> str:
    if error.startswith("invalid command: interaction_required"):
        return "interaction_required"
    return "access_denied"


def run_test(
    engine: ActionsEngine, trigger_id: str, link: Link, event: dict[str, Any] | None
) -> dict[str, Any]:
    """The test runner: one execution against a sample or given event, recorded as a test.

    Nothing reaches a user or a token, and ``api.cache`` uses a separate test namespace.
    """
    trigger = triggers.get(trigger_id)
    sandboxed = Link(**{**link.__dict__, "action_id": link.action_id + ":test"})
    effects = Effects()
    began = time.perf_counter()
    outcome, error = engine._run_link(
        trigger, sandboxed, event if event is not None else trigger.sample,
        link.timeout_ms / 1000, True, None, None, effects,
    )  # fmt: skip
    outcome.ms = (time.perf_counter() - began) * 1000
    stored = record(trigger_id, link, outcome, error, None, None, None, test=True)
    engine.records.save([stored])
    return {
        "execution_id": stored.id,
        "commands": stored.commands,
        "effects": effects.as_dict(),
        "logs": stored.logs,
        "duration_ms": round(outcome.ms, 2),
        "error": stored.error,
    }


def link_for_test(
    session: Session, box: SecretBox, deps_root: Path, action: Action, number: int | None
) -> Link:
    """What the test runner runs: the draft, or deployed version ``number`` once its
    dependencies are installed (a version still building would run without them)."""
    from idp.actions.service import NotFound, require_built

    code, deps = action.code, None
    if number is not None:
        version = session.scalar(
            select(ActionVersion).where(
                ActionVersion.action_id == action.id, ActionVersion.number == number
            )
        )
        if version is None:
            raise NotFound(f"{action.name!r} has no version {number}")
        require_built(action, version)
        code = version.code
        deps = deps_root / version.deps_dir if version.deps_dir else None
    return Link(
        action_id=action.id,
        name=action.name,
        version=number or 0,
        code=code,
        deps=deps,
        allowed_hosts=tuple(action.allowed_hosts),
        configuration=dict(action.configuration),
        timeout_ms=action.timeout_ms,
        allowed_to_fail=False,
        secrets=secrets_of(session, box, action.id),
    )
