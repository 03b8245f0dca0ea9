"""The zygote: forks one child per run order (through its spare when one is ready), kills
children on order or at their deadline, and exits when the host goes away (see the package
docstring for the protocol)."""

from __future__ import annotations

import _socket
import array
import contextlib
import ctypes
import gc
import os
import select
import signal
import sys
import time
import types
from typing import Any

from .child import mark, rehearse, run_child
from .confine import (
    DENIED_SYSCALLS,
    LIBC,
    ZYGOTE_NEEDS,
    ZYGOTE_SIZE,
    address_space,
    build_filter,
    confine,
    export_filter,
    install_filter,
    prepare,
)
from .values import DECODE


def main() -> None:
    """The zygote, on the control socket ``sys.argv[1]``, until the host goes away."""
    control_fd = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    # The host sets LD_BIND_NOW for the dynamic linker at start (sandbox.BIND_NOW); actions
    # see the environment they always saw.
    os.environ.pop("LD_BIND_NOW", None)
    # Not dumpable, before any fork (children inherit it): a child must not open the zygote's
    # /proc/<pid>/mem, fd or environ, nor a sibling's while it still holds its job unconfined.
    LIBC[0].prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    # Forking the next spare is background work: the request waiting on an execution's result
    # comes first (a child then adds its own nice on top of this one).
    os.nice(5)
    # The C socket type, not socket.py's subclass: its close() and friends are Python code
    # that every child would run (and copy the pages of).
    control = _socket.socket(fileno=control_fd)
    children: dict[int, tuple[str, float]] = {}  # pid -> (execution id, deadline)
    by_id: dict[str, int] = {}
    # pyseccomp is bound beside this package (``__main__`` put that directory on the path).
    if len(sys.argv) > 2:  # where pyseccomp lives when not bound beside us (insecure dev)
        sys.path.insert(0, sys.argv[2])
    name_libraries()
    zygote_only = tuple(name for name in DENIED_SYSCALLS if name not in ZYGOTE_NEEDS)
    install_filter(export_filter(build_filter(zygote_only)))
    prepare(export_filter(build_filter(ZYGOTE_NEEDS)))
    ZYGOTE_SIZE[0] = address_space()

    # Run the execution's own code on a job of ours until CPython has specialised it (see
    # ``rehearse``): children then run it without writing to the zygote's code and caches.
    rehearse()
    # Children only read the zygote's objects: keep the collector from touching (and so
    # copying) every page of them after each fork.
    gc.collect()
    gc.freeze()
    spare: Spare | None = None
    last_order: dict[str, Any] | None = None  # the first spare waits for the first order
    while True:
        timeout = 0.05 if children else None
        ready, _, _ = select.select([control], [], [], timeout)
        if ready:
            request, fds = receive(control)
            if request is None:
                os._exit(0)
            if "kill" in request:
                pid = by_id.get(request["kill"])
                if pid:
                    _kill(pid)
            elif "run" in request and len(fds) == 2:
                pid = spare.hand_over(request, fds) if spare else 0
                spare, last_order = None, request
                if not pid:
                    pid = start_child(control, request, fds)
                for fd in fds:
                    os.close(fd)
                children[pid] = (request["run"], time.monotonic() + float(request["timeout"]))
                by_id[request["run"]] = pid
            else:
                for fd in fds:
                    os.close(fd)
        if spare is None and last_order is not None:
            spare = Spare.fork(control, last_order)  # while the execution runs elsewhere
        now = time.monotonic()
        for pid, (run_id, deadline) in list(children.items()):
            if now > deadline:
                _kill(pid)
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                del children[pid]
                by_id.pop(run_id, None)


def name_libraries() -> None:
    """No /etc/ld.so.cache and no /tmp in here: pyseccomp gets a ``ctypes.util`` that names
    the libraries instead of searching. The real one imports subprocess, tempfile and, through
    them, threading and random, whose at-fork handlers then ran in every child: ~160 more
    copy-on-write faults in each child between fork and its first line, and 1.5 MB more
    zygote."""
    util = types.ModuleType("ctypes.util")
    util.find_library = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}.get  # type: ignore[attr-defined]
    sys.modules["ctypes.util"] = util
    ctypes.util = util  # type: ignore[attr-defined]


def receive(sock: _socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One order and the descriptors that came with it; (None, []) at end-of-file."""
    fds = array.array("i")
    message, ancdata, _, _ = sock.recvmsg(4096, _socket.CMSG_SPACE(2 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not message:
        for fd in fds:
            os.close(fd)
        return None, []
    return DECODE(message.decode(), 0)[0], list(fds)


def receive_pipes(sock: _socket.socket) -> list[int]:
    """In a spare: the two pipes of its execution, [] if the zygote went away."""
    fds = array.array("i")
    message, ancdata, _, _ = sock.recvmsg(16, _socket.CMSG_SPACE(2 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if message != b"run":
        for fd in fds:
            os.close(fd)
        return []
    return list(fds)


def become_execution(request: dict[str, Any], fds: list[int], confined: bool = False) -> None:
    """In a fresh child: the job's pipes on fds 0 and 1, nothing else open; run it; exit."""
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    os.closerange(2, 1 << 16)
    os.open("/dev/null", os.O_WRONLY)  # fd 2
    run_child(request, confined)


def start_child(control: _socket.socket, request: dict[str, Any], fds: list[int]) -> int:
    """Fork a child for this order now (no spare was ready)."""
    pid = os.fork()
    if pid == 0:
        gc.disable()  # one short execution: nothing worth collecting
        control.close()
        os.setsid()
        become_execution(request, fds)
    return pid


class Spare:
    """A child forked and confined ahead of its order. It holds no job, no secret and no pipe
    until ``hand_over``; then it is an execution like any other, and the zygote forks the
    next. Its limits are the last order's, with the CPU rlimit at the order's ceiling (the
    trigger's budget): each execution's own timeout is the zygote's wall-clock kill."""

    def __init__(self, pid: int, sock: _socket.socket, limits: dict[str, Any]) -> None:
        self.pid = pid
        self.sock = sock
        self.limits = limits

    @classmethod
    def fork(cls, control: _socket.socket, order: dict[str, Any]) -> Spare | None:
        limits = {
            "memory": order["memory"],
            "nice": order.get("nice", 10),
            "cpu": max(int(order.get("cpu_ceiling", 0)), int(order["cpu"])),
        }
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:  # RLIMIT or memory: run on demand instead
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            control.close()
            ours.close()
            _spare(theirs, limits)
        theirs.close()
        return cls(pid, ours, limits)

    def fits(self, order: dict[str, Any]) -> bool:
        return (
            self.limits["memory"] == order["memory"]
            and self.limits["nice"] == order.get("nice", 10)
            and self.limits["cpu"] >= int(order["cpu"])
        )

    def hand_over(self, request: dict[str, Any], fds: list[int]) -> int:
        """The spare's pid once it has the order, 0 if it could not take it (it is reaped)."""
        try:
            if not self.fits(request):
                raise OSError("the spare was confined for other limits")
            ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))]
            # The spare's limits are set already: it needs the pipes, not the order (parsing
            # it there and serialising it here cost ~30 copy-on-write faults on each side).
            self.sock.sendmsg([b"run"], ancillary)
            return self.pid
        except OSError:
            _kill(self.pid)
            os.waitpid(self.pid, 0)
            return 0
        finally:
            self.sock.close()


def _spare(sock: _socket.socket, limits: dict[str, Any]) -> None:
    """The spare's own code, apart from ``Spare.fork`` (which the zygote runs, and CPython
    specialises, at every fork: a child running its other branch would write to it)."""
    gc.disable()  # one short execution: nothing worth collecting
    os.setsid()
    confine(limits)
    mark("confinement")
    fds = receive_pipes(sock)
    if len(fds) != 2:
        os._exit(0)  # the zygote went away, or sent no job
    sock.close()
    become_execution(limits, fds, confined=True)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
