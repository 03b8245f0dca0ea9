"""Running a trigger's chain: load the bound live versions, run each in the sandbox, validate
its commands, record the execution, and fail closed (ARCHITECTURE.md §7 and §11).

Chains are cached per worker and reloaded when the generation stamp changes (one ``stat`` per
chain run) or after ``ACTIONS_CHAIN_CACHE_SECONDS``, so a token request with no bound action
opens no database session at all.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from flask import current_app, has_app_context
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from idp.actions import triggers
from idp.actions.commands import CommandError, Effects, apply_commands
from idp.actions.models import Action, ActionBinding, ActionExecution, ActionVersion
from idp.actions.records import RecordWriter
from idp.actions.runner.pool import Runner
from idp.actions.runner.sandbox import Limits, Outcome, SandboxError
from idp.actions.service import secrets_of
from idp.actions.store import CacheStore, serve_cache
from idp.core import clock, http
from idp.core.crypto import SecretBox, random_token

log = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")
MAX_LOGS = 4096


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


def scrub(text: str, secrets: dict[str, str]) -> str:
    """No secret value in a stored log; no terminal escapes or control characters either."""
    for name, value in secrets.items():
        if len(value) >= 4:
            text = text.replace(value, f"[secret {name}]")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)[:MAX_LOGS]


class ActionsEngine:
    def __init__(
        self,
        config: dict[str, Any],
        box: SecretBox,
        instance: Path,
        session_factory: Callable[[], Any],
    ) -> None:
        self.config = config
        self.box = box
        self.runner = Runner(
            insecure_dev=bool(config["ACTIONS_INSECURE_DEV"]),
            concurrency=int(config["ACTIONS_CONCURRENCY"]),
        )
        self.stamp = instance / "actions" / "generation"
        self.deps_root = instance / "actions" / "deps"
        self.transaction = session_factory
        self.networks = http.parse_networks(str(config["ACTIONS_ALLOW_PRIVATE_NETWORKS"]))
        self.memory = int(config["ACTIONS_MEMORY_MB"]) * 1024 * 1024
        self.budget_ms = int(config["ACTIONS_TRIGGER_BUDGET_MS"])
        self.cache = CacheStore(session_factory)
        self._chains: dict[str, tuple[float, float, list[Link]]] = {}
        self._lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="actions")
        self._pending = threading.BoundedSemaphore(256)
        self.records = RecordWriter(self._insert)

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
    def _stamp(self) -> float:
        try:
            return os.stat(self.stamp).st_mtime_ns
        except FileNotFoundError:
            return 0.0

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
    ) -> ChainResult:
        """Run the chain in order; a deny stops it. Raises :class:`ActionsFailed` when closed."""
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
                began = time.perf_counter()
                outcome, error = self._run_link(
                    trigger, link, event, min(link.timeout_ms / 1000, remaining), interactive,
                    state, entry if link is chain[0] else None, result.effects,
                )  # fmt: skip
                outcome.ms = (time.perf_counter() - began) * 1000
                records.append(
                    self._record(trigger_id, link, outcome, error, request_id, client_id, user_id)
                )
                result.execution_ids.append(records[-1].id)
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
            self._save_later(records)
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
            outcome = self.runner.run(job, limits, link.deps, self._rpc(link, timeout))
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

    def _rpc(self, link: Link, timeout: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
        deadline = time.monotonic() + timeout

        def serve(message: dict[str, Any]) -> dict[str, Any]:
            if message.get("rpc") == "cache":
                return serve_cache(self.cache, link.action_id, message)
            if message.get("rpc") == "http":
                return self._http(link, message, deadline)
            return {"error": "unknown request"}

        return serve

    def _http(self, link: Link, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        headers = message.get("headers") or {}
        body = message.get("body")
        if not isinstance(headers, dict):
            return {"error": "headers must be an object"}
        headers = {str(k): str(v) for k, v in headers.items()}
        if "json" in message:
            body = _json_bytes(message["json"])
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        elif body is not None:  # it was dropped without a word: a request without its body
            return {"error": "body is a string; send JSON data with json="}
        timeout = min(float(message.get("timeout") or 2.0), 10.0, deadline - time.monotonic())
        if timeout <= 0:
            return {"error": "no time left for an outbound call"}
        try:
            answer = http.fetch(
                str(message.get("method", "GET")),
                str(message.get("url", "")),
                allowed_hosts=link.allowed_hosts,
                allowed_networks=self.networks,
                headers=headers,
                body=body,
                timeout=timeout,
            )
        except http.FetchRefused as exc:
            return {"error": str(exc)}
        return answer.as_json_reply()

    def _record(
        self,
        trigger_id: str,
        link: Link,
        outcome: Outcome,
        error: str | None,
        request_id: str | None,
        client_id: str | None,
        user_id: str | None,
        test: bool = False,
    ) -> ActionExecution:
        denied = any(c.get("op") in {"access.deny", "validation.error"} for c in outcome.commands)
        kind = (outcome.error or {}).get("kind")
        return ActionExecution(
            id="exe_" + random_token(12),
            action_id=link.action_id,
            version=link.version or None,
            trigger=trigger_id,
            request_id=request_id,
            client_id=client_id,
            user_id=user_id,
            outcome=(kind or "invalid") if error else ("denied" if denied else "success"),
            error=scrub(error, link.secrets)[:1024] if error else None,
            logs=scrub(outcome.logs, link.secrets),
            commands=_scrub_commands(outcome.commands, link.secrets),
            duration_ms=round(outcome.ms, 3),
            test=test,
            created_at=clock.now(),
        )

    def _save_later(self, records: list[ActionExecution]) -> None:
        """Off the request path (``idp.actions.records``); in place without an app context."""
        if not has_app_context():
            self._save(records)
            return
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.records.submit(_rows(records), app.app_context)

    def _save(self, records: list[ActionExecution]) -> None:
        try:
            self._insert(_rows(records))
        except Exception:
            log.exception("could not store %d action execution records", len(records))

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        if rows:  # one Core INSERT, not the ORM's unit of work
            with self.transaction() as session:
                session.execute(insert(cast(Table, ActionExecution.__table__)), rows)


def _rows(records: list[ActionExecution]) -> list[dict[str, Any]]:
    columns = ActionExecution.__table__.columns
    return [{c.name: getattr(r, c.name) for c in columns} for r in records]


def _scrub_commands(commands: list[dict[str, Any]], secrets: dict[str, str]) -> list[Any]:
    import json

    try:
        text = json.dumps(commands, default=str, allow_nan=False)[:16384]
    except ValueError:
        return [{"unserialisable": True}]
    for value in secrets.values():
        if len(value) >= 4:
            text = text.replace(json.dumps(value)[1:-1], "[secret]")
    try:
        loaded: list[Any] = json.loads(text)
    except ValueError:
        return [{"truncated": True}]
    return loaded


def _json_bytes(value: Any) -> bytes:
    """The JSON as it came (the line it came on was parsed as JSON, NaN refused)."""
    import json

    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


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
    record = engine._record(trigger_id, link, outcome, error, None, None, None, test=True)
    engine._save([record])
    return {
        "execution_id": record.id,
        "commands": record.commands,
        "effects": effects.as_dict(),
        "logs": record.logs,
        "duration_ms": round(outcome.ms, 2),
        "error": record.error,
    }


def link_for_test(
    session: Session, box: SecretBox, deps_root: Path, action: Action, number: int | None
) -> Link:
    """What the test runner runs: the draft, or deployed version ``number``."""
    from idp.actions.service import NotFound

    code, deps = action.code, None
    if number is not None:
        version = session.scalar(
            select(ActionVersion).where(
                ActionVersion.action_id == action.id, ActionVersion.number == number
            )
        )
        if version is None:
            raise NotFound(f"{action.name!r} has no version {number}")
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
