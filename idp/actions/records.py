"""Execution records, written off the request path.

A chain hands its records to this process's writer and the request goes on; a writer thread
stores whatever has queued up meanwhile in one transaction. On the request path that saves a
write transaction per chain (~1 ms here, a fifth of an action's cost), and under load many
chains share one. Readers in this process (the management API) call :meth:`flush` first; other
processes see the records within milliseconds, as Auth0's execution logs are eventually there.
Records still queued are written at exit; a killed process loses at most the last batch.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000  # chains, not rows: beyond this a burst is dropped and logged, not buffered

Rows = list[dict[str, Any]]


class RecordWriter:
    """One writer thread per process (started on first use, again after a fork)."""

    def __init__(self, save: Callable[[Rows], None]) -> None:
        self._save = save  # called in the writer thread, inside the app context given to submit
        self._queue: queue.Queue[Rows] = queue.Queue(MAX_QUEUED)
        self._lock = threading.Lock()
        self._pid = 0
        self._context: Callable[[], Any] | None = None

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
