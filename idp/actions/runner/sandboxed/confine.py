"""Confining a process for good: rlimits, not dumpable, and a seccomp deny-list (SECURITY.md
§4.3). The zygote builds both filters once and loads the big one on itself; each child (or
spare) adds the small one as precompiled BPF."""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import signal
from typing import Any

# Syscalls an action never needs and that an escape would: processes, sockets, namespaces,
# other processes' memory, kernel interfaces with a history of bugs (SECURITY.md §4.3).
DENIED_SYSCALLS = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "ptrace",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "setpriority",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
    "sched_setaffinity",
    "ioprio_set",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    "bpf",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "setrlimit",
    "prlimit64",
    "personality",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "quotactl",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    # System V and POSIX IPC objects outlive the process: state and a channel across executions.
    "shmget",
    "shmat",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
)


# The zygote needs these to make, hand work to and stop children and to set their limits; it
# denies itself the rest of DENIED_SYSCALLS at start. Each child, once its limits are set, adds
# a second, small filter denying these too (the kernel stacks filters: a child is bound by both).
# Loading the small one per child costs far less than compiling the whole list per child.
ZYGOTE_NEEDS = ("clone", "clone3", "kill", "setrlimit", "prlimit64", "setpriority", "socketpair")


def confine(limits: dict[str, Any]) -> None:
    """rlimits, then seccomp; both are one-way for this process. Everything that can be is
    prepared in the zygote (``prepare``): each object a child touches is a page it copies."""
    # Functions and constants as this module's globals: a child runs this once, unspecialised,
    # and each ``module.name`` it looked up would be pages it copies (the name, the cache).
    _nice(int(limits.get("nice", 10)))
    # Not dumpable and no_new_privs: both set in the zygote before any fork and inherited (a
    # fork keeps the mm's dumpable flag and the task's no_new_privs; neither can be undone).
    cpu = max(1, int(limits["cpu"]))
    memory = int(limits["memory"]) + ZYGOTE_SIZE[0]
    _setrlimit(_CPU, (cpu, cpu))
    _setrlimit(_AS, (memory, memory))
    _setrlimit(_NOFILE, (16, 16))
    _setrlimit(_FSIZE, (0, 0))  # SIGXFSZ: ignored since the zygote's ``prepare`` (inherited)
    _setrlimit(_CORE, (0, 0))
    _setrlimit(_NPROC, (0, 0))
    if CHILD_PROGRAM[0]() != 0:  # prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, program)
        raise OSError("the seccomp filter was refused")


_nice = os.nice
_setrlimit = resource.setrlimit
_CPU, _AS, _NOFILE = resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NOFILE
_FSIZE, _CORE, _NPROC = resource.RLIMIT_FSIZE, resource.RLIMIT_CORE, resource.RLIMIT_NPROC


def prepare(child_filter: bytes) -> None:
    """In the zygote, before any fork: the small filter as a ready ``sock_fprog`` (its buffer
    kept alive here), and SIGXFSZ ignored so that a child writing a file gets EFBIG rather
    than a kill (a disposition a fork inherits)."""
    buffer = ctypes.create_string_buffer(child_filter, len(child_filter))
    fprog = _SockFprog(len(child_filter) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    load = functools.partial(LIBC[0].prctl, 22, 2, ctypes.byref(fprog), 0, 0)
    CHILD_PROGRAM[:] = [load, fprog, buffer]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def build_filter(names: tuple[str, ...]) -> Any:
    """A deny-list filter; built in the zygote, loaded as precompiled BPF (``install_filter``)."""
    import pyseccomp as seccomp  # bound read-only into the sandbox

    deny = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in names:
        try:
            deny.add_rule(seccomp.ERRNO(1), name)
        except Exception:  # noqa: BLE001, S112 (a syscall this architecture lacks)
            continue
    return deny


CHILD_PROGRAM: list[Any] = []  # the small filter each child adds (ZYGOTE_NEEDS), by reference
LIBC = [ctypes.CDLL(None)]
ZYGOTE_SIZE = [0]  # the address space a child starts with (it is the zygote's, forked)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def export_filter(deny: Any) -> bytes:
    """The filter as a BPF program, compiled once here rather than by libseccomp per child."""
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb", closefd=True) as sink:
            deny.export_bpf(sink)
        return os.read(read_end, 1 << 20)
    finally:
        os.close(read_end)


def install_filter(program: bytes) -> None:
    """no_new_privs + SECCOMP_MODE_FILTER with a precompiled program: two prctl calls."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if LIBC[0].prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError("no_new_privs refused")
    if LIBC[0].prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, MODE_FILTER
        raise OSError("the seccomp filter was refused")


def address_space() -> int:
    """This process's address space in bytes (a child's RLIMIT_AS is on top of it)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()
