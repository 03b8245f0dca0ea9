"""Which isolation this machine offers, and the per-process set of warm zygotes.

Start-up decides once: bubblewrap with user namespaces (level A) or nothing. Without isolation,
actions are refused and the reason is logged at start-up and shown in ``/health/ready``; the
operator may set ``ACTIONS_INSECURE_DEV=1`` for development, which runs the same zygote without
bubblewrap (rlimits and seccomp still apply, the file system and network do not) and says so
loudly on every start.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from idp.actions.runner import sandbox
from idp.actions.runner.sandbox import Limits, Outcome, SandboxError, Zygote
from idp.ops import metrics

log = logging.getLogger(__name__)


def probe() -> tuple[str | None, str]:
    """(level, reason): run a trivial bubblewrap sandbox to prove it works here."""
    if not shutil.which("bwrap"):
        return None, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    try:
        with open("/proc/sys/user/max_user_namespaces") as fh:
            if int(fh.read().strip() or 0) == 0:
                return None, "user namespaces are disabled (user.max_user_namespaces = 0)"
    except OSError:
        pass
    argv = sandbox.bwrap_argv(0, None)
    argv[argv.index("--") + 1 :] = [str(sandbox.interpreter()), "-I", "-S", "-c", "pass"]
    try:
        result = subprocess.run(  # noqa: S603 (fixed argv)
            argv, capture_output=True, timeout=10, env={}, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bubblewrap could not start: {exc}"
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()[:300]
        return None, f"bubblewrap could not start a sandbox: {detail}"
    return "bubblewrap", "bubblewrap + user namespaces + rlimits + seccomp"


class _InsecureZygote(Zygote):
    """Development only: the same zygote, without bubblewrap."""

    def start(self) -> None:
        import socket

        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        runtime = str(Path(sandbox._pyseccomp_file()).parent)
        try:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-B",
                    str(sandbox.RUNTIME),
                    str(inside.fileno()),
                    runtime,
                ],
                pass_fds=(inside.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={"LD_BIND_NOW": "1"},  # as bubblewrap's --setenv (sandbox.BIND_NOW)
                start_new_session=True,
            )
        finally:
            inside.close()
        self.control = host


class Runner:
    """Runs one job in a warm sandbox; at most ``concurrency`` at a time in this process."""

    def __init__(
        self, insecure_dev: bool = False, concurrency: int = 0, metered: bool = False
    ) -> None:
        self.insecure_dev = insecure_dev
        self.metered = metered  # report the pool's state to idp.ops.metrics
        self._busy = 0
        self.level: str | None = None
        self.reason = "not probed yet"
        self._probed = False
        self._lock = threading.Lock()
        self._zygotes: dict[tuple[int, str | None], Zygote] = {}
        self._slots = threading.BoundedSemaphore(concurrency or 2 * (os.cpu_count() or 1))

    def ensure_probed(self) -> None:
        with self._lock:
            if self._probed:
                return
            self.level, self.reason = probe()
            if self.level is None and self.insecure_dev:
                self.level = "insecure-dev"
                log.warning(
                    "ACTIONS RUN WITHOUT ISOLATION (ACTIONS_INSECURE_DEV=1): %s. "
                    "Never do this in production.",
                    self.reason,
                )
            elif self.level is None:
                log.error("Actions are disabled: %s", self.reason)
            else:
                log.info("Actions sandbox: %s", self.reason)
            self._probed = True

    @property
    def available(self) -> bool:
        self.ensure_probed()
        return self.level is not None

    def _zygote(self, deps: Path | None) -> Zygote:
        key = (os.getpid(), str(deps) if deps else None)
        with self._lock:
            zygote = self._zygotes.get(key)
            if zygote is None:
                kind = _InsecureZygote if self.level == "insecure-dev" else Zygote
                zygote = kind(deps)
                self._zygotes[key] = zygote
            return zygote

    def run(
        self,
        job: dict[str, Any],
        limits: Limits,
        deps: Path | None = None,
        rpc: Any = None,
    ) -> Outcome:
        if not self.available:
            raise SandboxError(f"actions are disabled on this server: {self.reason}")
        if not self._slots.acquire(timeout=limits.timeout):
            raise SandboxError("all sandboxes are busy")
        self._report(+1)
        try:
            if deps is not None:
                inside = sandbox.SANDBOX_DEPS if self.level == "bubblewrap" else str(deps)
                job = {**job, "deps": inside}
            return self._zygote(deps).run(job, limits, rpc)
        finally:
            self._slots.release()
            self._report(-1)

    def _report(self, running: int) -> None:
        """Zygotes alive and executions running in this process, for the metrics."""
        if not self.metered:
            return
        with self._lock:
            self._busy += running
            alive = sum(z.alive() for z in self._zygotes.values())
            metrics.sandbox_state(alive, self._busy)

    def close(self) -> None:
        """Stop this process's zygotes (their process groups, spare children included)."""
        with self._lock:
            for zygote in self._zygotes.values():
                zygote.stop()
            self._zygotes.clear()
            if self.metered:
                metrics.sandbox_state(0, self._busy)
