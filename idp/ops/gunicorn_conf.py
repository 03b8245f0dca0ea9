"""gunicorn's server hooks for ``idp serve`` (``gunicorn -c python:idp.ops.gunicorn_conf``).

``idp serve`` sets the environment this reads: ``PROMETHEUS_MULTIPROC_DIR`` (metrics on; the
folder emptied before gunicorn starts), ``IDP_LOG_FORMAT`` and ``IDP_ACCESS_LOG``.
"""

from __future__ import annotations

import os
from typing import Any

from idp.ops import jsonlog


def child_exit(server: Any, worker: Any) -> None:
    """In the master, when a worker has exited: its live gauges stop counting (prometheus_client's
    multiprocess mode keeps them in files named by pid)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, after its last request: flush and stop what it holds in memory."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        from idp.ops.shutdown import drain

        drain(app)


if os.environ.get("IDP_LOG_FORMAT") == "json":
    # gunicorn's own lines (start, workers booting and exiting, the access log) as JSON too
    logconfig_dict = jsonlog.gunicorn_logconfig(access_log=bool(os.environ.get("IDP_ACCESS_LOG")))
