"""Execution records: what each execution is stored as, written off the request path.

A record keeps the outcome, the logs and the commands, with the action's secret values replaced
and control characters escaped (no secret in a stored log, no terminal escape in a log viewer).

A chain hands its records to this process's writer and the request goes on; a writer thread
stores whatever has queued up meanwhile in one transaction. On the request path that saves a
write transaction per chain (~1 ms here, a fifth of an action's cost), and under load many
chains share one. Readers in this process (the management API) call :meth:`flush` first; other
processes see the records within milliseconds, as Auth0's execution logs are eventually there.
Records still queued are written at exit; a killed process loses at most the last batch.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from flask import current_app, has_app_context
from sqlalchemy import Table, insert

from idp.actions.models import ActionExecution
from idp.actions.runner.sandbox import Outcome
from idp.core import clock
from idp.core.crypto import random_token

if TYPE_CHECKING:
    from idp.actions.engine import Link

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000  # chains, not rows: beyond this a burst is dropped and logged, not buffered
MAX_LOGS = 4096
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")

Rows = list[dict[str, Any]]


def scrub(text: str, secrets: dict[str, str]) -> str:
    """No secret value in a stored log; no terminal escapes or control characters either."""
    for name, value in secrets.items():
        if len(value) >= 4:
            text = text.replace(value, f"[secret {name}]")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)[:MAX_LOGS]


def record(
    trigger_id: str,
    link: Link,
    outcome: Outcome,
    error: str | None,
    request_id: str | None,
    client_id: str | None,
    user_id: str | None,
    test: bool = False,
) -> ActionExecution:
    """The record of one execution of ``link`` (not stored yet: ``RecordWriter``)."""
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


def _scrub_commands(commands: list[dict[str, Any]], secrets: dict[str, str]) -> list[Any]:
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


def _rows(records: list[ActionExecution]) -> Rows:
    columns = ActionExecution.__table__.columns
    return [{c.name: getattr(r, c.name) for c in columns} for r in records]


class RecordWriter:
    """One writer thread per process (started on first use, again after a fork), storing
    through ``transaction`` (a context manager giving a session that commits)."""

    def __init__(self, transaction: Callable[[], Any]) -> None:
        self._transaction = transaction
        self._queue: queue.Queue[Rows] = queue.Queue(MAX_QUEUED)
        self._lock = threading.Lock()
        self._pid = 0
        self._context: Callable[[], Any] | None = None

    def save_later(self, records: list[ActionExecution]) -> None:
        """Off the request path; in place when there is no app context to hand the thread."""
        if not has_app_context():
            self.save(records)
            return
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.submit(_rows(records), app.app_context)

    def save(self, records: list[ActionExecution]) -> None:
        """Now, in this thread (the test runner's record, read back at once)."""
        try:
            self._save(_rows(records))
        except Exception:
            log.exception("could not store %d action execution records", len(records))

    def _save(self, rows: Rows) -> None:
        """Called in the writer thread inside the app context given to ``submit``."""
        if rows:  # one Core INSERT, not the ORM's unit of work
            with self._transaction() as session:
                session.execute(insert(cast(Table, ActionExecution.__table__)), rows)

    def submit(self, rows: Rows, app_context: Callable[[], Any]) -> None:
        if not rows:
            return
        self._start(app_context)
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            log.error("the execution record queue is full: %d records dropped", len(rows))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record submitted so far is stored (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                done.wait(remaining)
        return True

    def _start(self, app_context: Callable[[], Any]) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._context = app_context
            thread = threading.Thread(target=self._run, name="action-records", daemon=True)
            thread.start()
            self._pid = os.getpid()
            atexit.register(self.flush, 2.0)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                assert self._context is not None
                with self._context():
                    self._save([row for rows in batch for row in rows])
            except Exception:
                log.exception("could not store %d chains' execution records", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
