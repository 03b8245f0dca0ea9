"""A worker's last steps after gunicorn's (or granian's, :mod:`idp.ops.granian_serve`) graceful
stop (SIGTERM): its requests in flight have been answered (the server waits for them up to
``--graceful-timeout``); what the process still holds in memory is finished here, before it
exits.

* Actions: the background chains queued (non-blocking triggers) run, the execution records
  queued for the writer thread are stored, and the sandbox zygotes are stopped (their process
  groups, the spare child included), so no zygote outlives its worker.
* Log streams and back-channel logouts: the batch in flight is finished and the leases are
  given back, so another worker or instance takes the streams over at once rather than when
  the lease expires. Their state is in the database: nothing else is held in memory.
* Mail queued for the background sender is sent.

Each step is bounded, and one failing does not keep the others from running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from flask import Flask

log = logging.getLogger(__name__)

STEP_SECONDS = 10.0  # each loop's last batch; gunicorn kills the worker at its graceful timeout


def drain(app: Flask) -> None:
    from idp.backchannel import delivery as backchannel
    from idp.core.mail import Mailer
    from idp.logstreams import delivery as logstreams

    steps: list[tuple[str, Callable[[], object]]] = []
    for key in (logstreams.EXTENSION, backchannel.EXTENSION):
        loop = app.extensions.get(key)
        if loop is not None:
            steps.append((key, partial(loop.stop, STEP_SECONDS)))
    services = app.extensions.get("idp.services")
    if services is not None:
        steps.append(("actions", services.actions.close))
    steps.append(("mail", lambda: Mailer._pool.shutdown(wait=True)))
    with app.app_context():
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("shutdown: %s did not finish cleanly", name)
