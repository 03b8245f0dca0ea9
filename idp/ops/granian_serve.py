"""``idp serve`` (``--server granian``, the default): idp.wsgi:app under granian's WSGI
workers, with what ``idp.ops.gunicorn_conf`` gives gunicorn (``python -m
idp.ops.granian_serve``, run by ``idp serve``, which sets ``PROMETHEUS_MULTIPROC_DIR``,
``IDP_LOG_FORMAT`` and ``IDP_ACCESS_LOG`` as for gunicorn).

granian has no server hooks; its Python server (``granian.server.mp.MPServer``, 2.8.x) is used
with these instead:

* A worker's last flush: granian's WSGI worker returns from its serving call once SIGTERM has
  stopped it and the requests in flight are answered, then the process leaves through
  ``os._exit`` (multiprocessing), so neither ``atexit`` nor a ``finally`` of idp's would run.
  The worker's target here wraps granian's: after it returns, :func:`idp.ops.shutdown.drain`,
  then the ``atexit`` functions (the OpenTelemetry exporter's flush, as a gunicorn worker's
  ``sys.exit`` runs them). ``--graceful-timeout`` is granian's ``workers_kill_timeout``: the
  main process kills a worker that has not finished by then, as gunicorn's arbiter does.
* A dead worker's gauges: granian's main process joins each worker in a watcher thread; the
  watcher here calls prometheus_client's ``mark_process_dead`` with the worker's pid first
  (gunicorn's ``child_exit``).
* Respawn: a worker that dies is started again (``respawn_failed_workers``), without granian's
  crash-loop exit (gunicorn has none); a worker that cannot load the app exits with
  :data:`BOOT_ERROR` and the server stops, as gunicorn halts on a worker's boot error.
* The metrics port: a granian server listens on one address, so ``--metrics-port`` is served by
  a process of its own (:mod:`idp.ops.metrics_listener`) started and stopped with the server.
* The WSGI environ: granian copies the whole process environment into every request's environ,
  so ``HTTP_PROXY`` would reach the app as a ``Proxy`` request header and ``IDP_SECRET_KEY``
  would sit in ``request.environ``; :class:`CleanEnviron` takes them out again.
* HTTP/1.1 only, and ``--threads`` Python threads per worker (``blocking_threads``; 2 by
  default: granian's Rust thread accepts connections for the worker while its Python is busy, so
  with one thread a client sending its body slowly held every connection queued there; with two
  the other serves them, and throughput is the same: bench/README.md); the connections wait on
  granian's Rust side, kept alive. granian's ``backpressure`` stays at its default: it counts
  connections, not requests, so a lower one would let idle keep-alive connections (held 30 s)
  hold a worker.
* Responses of known length are given to granian whole (:class:`CleanEnviron`).
* The listening sockets: one per worker, opened by the main process (see
  ``Server._init_shared_socket``).
* ``--timeout``: a worker whose request runs longer is ended and replaced, as gunicorn's
  arbiter does (:mod:`idp.ops.watchdog`).
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from idp.ops import jsonlog
from idp.ops.watchdog import Watchdog

BOOT_ERROR = 3  # gunicorn's WORKER_BOOT_ERROR
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
TARGET = "idp.wsgi:app"
# gunicorn's: '%(h)s "%(m)s %(U)s" %(s)s %(M)sms', the path without the query string
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s" %(status)d %(dt_ms)dms'
_HANDLER = "logging.StreamHandler"
_STOP = (signal.SIGTERM, signal.SIGINT)
_CGI_KEYS = frozenset({"SCRIPT_NAME", "GATEWAY_INTERFACE", "SERVER_SOFTWARE"})
WHOLE_BODY_LIMIT = 256 * 1024  # bytes: a response of known length up to this goes out whole

log = logging.getLogger("idp.serve")
_loaded: dict[str, Any] = {}  # the worker's Flask app ("app"), for its last flush


class CleanEnviron:
    """The app behind a WSGI environ without the process environment granian merges into it
    (``dict(os.environ) | scope``). A request header named like an environment variable
    (``Proxy`` when ``HTTP_PROXY`` is set) is dropped with it, as httpoxy mitigations do.

    A response whose length the app states (``Content-Length``, up to
    :data:`WHOLE_BODY_LIMIT`) is handed to granian whole, as a list: granian sends a list in one
    piece, and streams any other iterable (Flask's, always) chunk by chunk to its Rust thread,
    the headers first: two wake-ups and usually two writes a response. Measured on the token
    endpoint: 1.0 ``writev`` a token instead of 1.7, 4.3-4.6 context switches instead of 6.0-6.4,
    11.7-12.8 system calls instead of 15.1-15.8 (``perf stat``), the same user-space
    instructions (callgrind). The bytes and headers sent are the same; a body of unknown length
    (a stream) is left to stream. PEP 3333: the app's iterable is closed once read."""

    def __init__(
        self, app: Any, multiprocess: bool, multithread: bool, watchdog: Watchdog | None = None
    ) -> None:
        self.app = app
        self.drop = tuple(k for k in os.environ if k not in _CGI_KEYS)
        self.flags = {"wsgi.multiprocess": multiprocess, "wsgi.multithread": multithread}
        self.watchdog = watchdog

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.watchdog is None:
            return self._serve(environ, start_response)
        self.watchdog.begin()
        try:
            return self._serve(environ, start_response)
        finally:
            self.watchdog.end()

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        pop = environ.pop
        for key in self.drop:
            pop(key, None)
        environ.update(self.flags)
        sized: list[int] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            for name, value in headers:
                if name.lower() == "content-length" and value.isdigit():
                    sized.append(int(value))
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        if not sized or sized[0] > WHOLE_BODY_LIMIT or isinstance(body, list):
            return body
        try:  # PEP 3333: the server calls close() once done with the iterable
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()


def _load(workers: int, threads: int, timeout: int) -> Any:
    """In the worker: import the app (gunicorn's worker boot); a failure stops the server.
    granian installs the worker's own SIGTERM handler only once the app is loaded, and until
    then the main process's (inherited with the fork) would swallow it: a worker told to stop
    while it boots would serve until killed. It stops once loaded instead, as gunicorn's does."""
    told: list[int] = []
    previous = {sig: signal.signal(sig, lambda n, _f: told.append(n)) for sig in _STOP}
    try:
        from idp.wsgi import app
    except Exception:
        log.exception("worker failed to boot")
        sys.exit(BOOT_ERROR)
    if told:
        _last_flush(app)
        sys.exit(0)
    _loaded["app"] = app
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    watchdog = Watchdog(timeout, threads) if timeout > 0 else None
    if watchdog is not None:
        watchdog.start()
    return CleanEnviron(app, workers > 1, threads > 1, watchdog)


def _last_flush(app: Any) -> None:
    from idp.ops.shutdown import drain

    log.info("worker exiting (pid: %d): last flush", os.getpid())  # gunicorn's line too
    drain(app)
    atexit._run_exitfuncs()  # os._exit follows: what sys.exit would have run


def _stop_with_the_main_process() -> None:
    """SIGTERM to this worker when the main process dies (Linux ``PR_SET_PDEATHSIG``): a
    gunicorn worker stops once its arbiter is gone (it watches its parent's pid), where a
    granian worker killed with its main process (SIGKILL, the OOM killer) would serve on,
    orphaned, holding its socket and the port."""
    parent = os.getppid()
    # until _load's handler, the main process's inherited one would swallow the signal: the
    # default action instead (nothing is loaded yet, so nothing is lost)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: as before
        return
    if os.getppid() != parent or parent == 1:  # it died before the call
        os._exit(0)


def _worker(*args: Any, **kwargs: Any) -> None:
    """granian's WSGI worker, then the last flush (gunicorn's ``worker_exit``)."""
    from granian.server.mp import MPServer

    _stop_with_the_main_process()
    try:
        MPServer._spawn_wsgi_worker(*args, **kwargs)
    finally:
        if "app" in _loaded:
            _last_flush(_loaded["app"])


def _process_gone(pid: int | None) -> None:
    """In the main process, when a worker (or the metrics listener) has exited."""
    if pid and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _log_config(access_log: bool) -> dict[str, Any]:
    """granian's loggers (``_granian``, ``granian.access``) on stderr, the access log on
    stdout, as gunicorn's; all of them JSON with ``IDP_LOG_FORMAT=json``."""
    if os.environ.get("IDP_LOG_FORMAT") == "json":
        cfg = jsonlog.gunicorn_logconfig(access_log)
        cfg["loggers"] = {
            "_granian": cfg["loggers"]["gunicorn.error"],
            "granian.access": cfg["loggers"]["gunicorn.access"],
        }
        return cfg
    text = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"  # gunicorn's
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": text, "datefmt": "%Y-%m-%d %H:%M:%S %z"},
            "access": {"format": "%(message)s"},
        },
        "handlers": {
            "text": {"class": _HANDLER, "formatter": "text", "stream": "ext://sys.stderr"},
            "access": {"class": _HANDLER, "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "_granian": {"level": "INFO", "handlers": ["text"], "propagate": False},
            "granian.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
            log.name: {"level": "INFO", "handlers": ["text"], "propagate": False},
        },
    }


def _refuse_a_port_in_use(host: str, port: int) -> None:
    """Stop with the reason when another socket listens on the port. granian's sockets set
    SO_REUSEPORT, so a second ``idp serve`` on the same port (an old instance never stopped)
    would bind beside the first and silently take a share of its connections; a socket bound
    without the option (SO_REUSEADDR only: a port in TIME_WAIT is free) fails instead, as
    gunicorn's bind does."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
            sys.exit(1)


def build(args: argparse.Namespace) -> Any:
    from granian.constants import HTTPModes, Interfaces
    from granian.net import SocketSpec
    from granian.server.mp import MPServer

    class Server(MPServer):
        _slots: list[tuple[Any, socket.socket]]  # (granian's holder, its socket) per worker

        def _init_shared_socket(self) -> None:
            """A listening socket per worker, all bound and listening in this process before
            any worker starts and kept open by it (granian's Linux default binds each worker's
            SO_REUSEPORT socket in the worker once it has loaded the app: the port refused
            connections at start and reset the ones queued at a worker that died). Connections
            wait in a slot's backlog while its worker boots or is replaced. The kernel spreads
            new connections over the slots by a hash of their addresses: one socket shared by
            the workers went to whichever worker's Rust thread woke first, which drained a burst
            of connections alone (16 of 16 from wrk) and took connections while its Python
            thread was busy all the same."""
            _refuse_a_port_in_use(self.bind_addr, self.bind_port)
            self._ssp, self._slots = None, []
            for _ in range(self.workers):
                holder = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
                sock = socket.socket(fileno=holder.get_fd())
                sock.set_inheritable(True)
                sock.listen(self.backlog)  # now, not when the worker starts serving
                self._slots.append((holder, sock))

        def _drop_shared_socket(self) -> None:
            for _holder, sock in self._slots:
                sock.close()
            self._slots, self._sso = [], None

        def _spawn_worker(self, *args: Any, **kwargs: Any) -> Any:
            # the worker (or its replacement) serves its slot's socket; granian passes the
            # socket it finds here, and spawns from its main thread only
            holder, sock = self._slots[kwargs["idx"] if "idx" in kwargs else args[0]]
            self._shd, self._sfd, self._sso = holder, holder.get_fd(), sock
            wrk = super()._spawn_worker(*args, **kwargs)
            watch = wrk._watcher

            def watcher() -> None:
                wrk.inner.join()
                _process_gone(wrk.inner.pid)
                if wrk.inner.exitcode == BOOT_ERROR and not wrk.interrupt_by_parent:
                    log.error("worker-%d failed to boot: stopping", wrk.idx + 1)
                    self.respawn_failed_workers = False
                else:
                    self.respawned_wrks.pop(wrk.idx, None)  # always respawn, as gunicorn does
                watch()

            wrk._watcher = watcher  # type: ignore[method-assign]
            return wrk

    host, port = args.bind.rsplit(":", 1)
    server = Server(
        TARGET,
        address=host.strip("[]"),
        port=int(port),
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.threads,
        http=HTTPModes.http1,
        websockets=False,
        log_dictconfig=_log_config(args.access_log),
        log_access=args.access_log,
        log_access_format=ACCESS_FORMAT,
        respawn_failed_workers=True,
        workers_kill_timeout=args.graceful_timeout,
    )
    if args.metrics_bind:
        from idp.ops.metrics_listener import Listener

        listener = Listener(args.metrics_bind, args.graceful_timeout, _process_gone)
        server.on_startup(listener.start)
        server.on_shutdown(listener.stop)
    return server


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="idp serve --server granian")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--graceful-timeout", type=int, default=30)
    parser.add_argument("--timeout", type=int, default=30)  # 0: none
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--metrics-bind")
    args = parser.parse_args(None if argv is None else list(argv))
    loader = partial(_load, args.workers, args.threads, args.timeout)  # called in each worker
    build(args).serve(spawn_target=_worker, target_loader=loader, wrap_loader=False)


if __name__ == "__main__":
    main()
