"""The metrics port under granian (``idp serve --server granian --metrics-port P``).

gunicorn listens on both the public port and the metrics port, and any worker answers a scrape;
a granian server has one address, so the metrics port is a process of its own: the same app
(``create_app``, so the same ``/metrics`` view, the same 404 for anything else on that port and
the same token check) behind werkzeug's threaded server, whose ``SERVER_PORT`` is its
listener's port (:func:`idp.ops.views.local_port`). It reads every worker's multiprocess files,
as a scraping gunicorn worker does; it runs no request of the public port, no Actions and no
delivery loop. granian's main process starts it, restarts it if it dies, and stops it last.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("idp.serve")


class Listener:
    """In granian's main process: the metrics process, kept running until :meth:`stop`."""

    def __init__(self, bind: str, timeout: float, gone: Callable[[int | None], None]) -> None:
        self.bind, self.timeout, self.gone = bind, timeout, gone
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.stopping = threading.Event()

    def start(self) -> None:
        """Bound here, once, as gunicorn's arbiter binds its addresses: a scrape before the
        process is ready waits in the backlog instead of being refused, and a restarted
        process takes over the same socket."""
        if self.sock is None:
            host, port = self.bind.rsplit(":", 1)
            host = host.strip("[]")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.create_server((host, int(port)), family=family, backlog=128)
        fd = self.sock.fileno()
        argv = [sys.executable, "-m", __name__, str(fd)]
        self.proc = subprocess.Popen(argv, pass_fds=(fd,))  # noqa: S603
        log.info("metrics listener at %s (pid %d)", self.bind, self.proc.pid)
        threading.Thread(target=self._watch, args=(self.proc,), daemon=True).start()

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        if self.stopping.is_set():
            return
        self.gone(proc.pid)
        log.error("metrics listener exited (%s): starting another", proc.returncode)
        if not self.stopping.wait(1.0):
            self.start()

    def stop(self) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.gone(proc.pid)
        if self.sock is not None:
            self.sock.close()


def main(fd: int) -> None:
    from werkzeug.serving import make_server

    from idp import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per scrape
    server = make_server("", 0, create_app(), threaded=True, fd=fd)  # the address is fd's

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
