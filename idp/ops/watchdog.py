"""A worker timeout for granian's workers, as gunicorn's arbiter gives its sync workers.

gunicorn kills and replaces a sync worker that has been busy with one request for longer than
its ``--timeout`` (30 s by default): a request stuck on something without a timeout of its
own cannot hold a worker for ever. granian has no such thing, so each granian worker of
``idp serve`` (granian, the default server) runs this watchdog: the WSGI wrapper marks when each
of its threads takes a request and when it is done with it (two dictionary writes a request),
and a daemon thread looks once a second. A worker is stuck when every one of its threads has
been on the same request for longer than the timeout (with ``--threads 1`` that is gunicorn's
sync-worker rule; with two, the default, a worker still serving on its other thread is left
alone, as gunicorn's threaded workers are); it then writes every thread's stack to
stderr, the way gunicorn's ``WORKER TIMEOUT`` aborts a worker, and ends the process, which
granian's main process replaces. Nothing is flushed: a worker that cannot finish a request
cannot be trusted to finish anything else.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
import time

log = logging.getLogger("idp.serve")
EXIT_CODE = 1  # not the boot error's: the main process starts another worker


class Watchdog:
    """Per worker process: :meth:`begin` and :meth:`end` around each request (any thread)."""

    def __init__(self, timeout: float, threads: int, interval: float = 1.0) -> None:
        self.timeout, self.threads, self.interval = timeout, threads, interval
        self.busy: dict[int, float] = {}  # thread id -> when its request began (monotonic)

    def begin(self) -> None:
        self.busy[threading.get_ident()] = time.monotonic()

    def end(self) -> None:
        self.busy.pop(threading.get_ident(), None)

    def stuck(self, now: float) -> bool:
        began = list(self.busy.values())  # a copy: request threads change it meanwhile
        return len(began) >= self.threads and all(now - t > self.timeout for t in began)

    def start(self) -> None:
        threading.Thread(target=self._watch, name="worker-timeout", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval)
            if self.stuck(time.monotonic()):
                log.critical("WORKER TIMEOUT (pid:%d): a request ran over %ss; stopping",
                             os.getpid(), self.timeout)  # fmt: skip
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                os._exit(EXIT_CODE)
