"""The trusted side of the sandbox: a zygote that forks one fresh child per execution.

This file runs *inside* bubblewrap (``python -I -S bootstrap.py``) with nothing but the standard
library, ``pyseccomp`` and, for actions that have them, the version's dependencies. It must not
import ``idp``. The zygote never runs operator code; each child does, once, and then exits, so no
memory survives from one execution to the next.

Zygote protocol (control socket on fd 3, SOCK_SEQPACKET, one message per datagram):
  host -> zygote  ``{"run": id, "timeout": s, "cpu": s, "cpu_ceiling": s, "memory": bytes,
                  "nice": n}`` with two
                  file descriptors (SCM_RIGHTS): the job pipe's read end and the result pipe's
                  write end;
  host -> zygote  ``{"kill": id}``;
  zygote exits when the control socket reaches end-of-file (the host went away).
The zygote keeps one *spare*: a child forked and confined ahead of time (with the last
order's limits) that waits, holding nothing, for the next run order (passed on over a socket
of its own with the two pipes). Forking, the
costliest step on a small VM, is then off the execution's path; each child still runs one
execution only and starts from the zygote's memory, never from another execution's.
Child protocol (JSON lines; the child reads fd 0 and writes fd 1):
  in   one job line ``{"trigger", "code", "event", "secrets", "api", "cache", ...}``;
  out  zero or more ``{"rpc": ...}`` lines, each answered by one line on fd 0;
  out  one final ``{"done": true, "commands": [...], "logs": "...", "error": ...}`` line.
Nothing the child writes is trusted by the host (SECURITY.md §4.4): the host validates every line.
"""

from __future__ import annotations

import array
import builtins
import contextlib
import ctypes
import ctypes.util
import gc
import hashlib
import hmac
import io
import json
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any, NoReturn

CONTROL_FD = int(sys.argv[1]) if len(sys.argv) > 1 else 3
MAX_LOG_CHARS = 4096
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


# ----------------------------------------------------------------------------- child side
READ_ONLY = "event is read-only: change things through api"


class ReadOnlyDict(dict[str, Any]):
    """A JSON object as an action sees it in ``event`` (or an ``api.http`` reply): a real dict
    that refuses changes.

    Being a dict, it is the value it looks like: ``dict()``, ``**``, ``json.dumps``, ``==``,
    ``.items()``, ``len``, ``in`` and every api method take it as the JSON object it is. A key
    also reads as an attribute (``event.user.email``), a missing one as ``None`` (where Auth0's
    JavaScript has ``undefined``); a dict method wins over a key of the same name
    (``event.request.query["keys"]``). Nested objects and arrays are read-only too; ``dict(x)``,
    ``x | {...}``, ``x.copy()`` and ``copy.deepcopy(x)`` give changeable copies, ``to_dict()``
    a deep one. Read-only is a convenience, not a boundary: the event is this process's copy.
    """

    __slots__ = ()

    def __init__(self, data: Any = ()) -> None:
        if len(self):
            raise TypeError(READ_ONLY)
        dict.__init__(self, ((key, freeze(value)) for key, value in dict(data).items()))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocols (copy, pickle, ...) must not see None
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(READ_ONLY)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(READ_ONLY)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: Any) -> dict[str, Any]:
        return thaw(self)

    def __reduce__(self) -> Any:
        return type(self), (thaw(self),)

    def to_dict(self) -> dict[str, Any]:
        """A plain, changeable deep copy."""
        return thaw(self)


class ReadOnlyList(list[Any]):
    """A JSON array inside ``event``: a real list (so ``==`` a list, JSON, slicing and ``+``
    give what a list gives, the last two as plain lists) that refuses changes."""

    __slots__ = ()

    def __init__(self, items: Any = ()) -> None:
        if len(self):
            raise TypeError(READ_ONLY)
        list.__init__(self, (freeze(item) for item in items))

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: Any) -> list[Any]:
        return thaw(self)

    def __reduce__(self) -> Any:
        return type(self), (thaw(self),)


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(READ_ONLY)


# Every method that changes a dict or a list in place (set on the classes here rather than
# written out one by one: the refusal is the same for each).
for _name in ("__setitem__", "__delitem__", "__ior__", "clear", "pop", "popitem", "setdefault",
              "update"):  # fmt: skip
    setattr(ReadOnlyDict, _name, _refuse)
for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
              "insert", "pop", "remove", "clear", "sort", "reverse"):  # fmt: skip
    setattr(ReadOnlyList, _name, _refuse)


def freeze(value: Any) -> Any:
    """JSON data as ``event`` hands it to an action: objects and arrays read-only."""
    if isinstance(value, dict):
        return ReadOnlyDict(value)
    if isinstance(value, list):
        return ReadOnlyList(value)
    return value


def thaw(value: Any) -> Any:
    """A plain, changeable deep copy of (read-only) JSON data."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


class NotJson(TypeError):
    """An api method was given a value that JSON (RFC 8259) cannot carry."""


def as_json(value: Any, label: str) -> Any:
    """``value`` as plain JSON data (a copy), or an error naming ``label``: the api method and
    the claim or key. Raised in the action, at its call, so the execution log shows where; a
    value must never reach the host as its ``str()`` instead."""

    def refuse(item: Any) -> NoReturn:
        raise NotJson(f"{label}: value of type {type(item).__name__} is not JSON")

    try:
        return json.loads(json.dumps(value, allow_nan=False, default=refuse))
    except NotJson as exc:
        raise TypeError(str(exc)) from None
    except TypeError as exc:  # a key that is not a string, number, true, false or null
        raise TypeError(f"{label}: {exc}") from None
    except ValueError as exc:  # NaN, Infinity, or a value that contains itself
        raise ValueError(f"{label}: value is not JSON ({exc})") from None


def labelled(method: str, args: tuple[Any, ...]) -> str:
    """``id_token.set_custom_claim('x')``: the method, and the claim or key when it has one."""
    if len(args) > 1 and isinstance(args[0], str):
        return f"{method}({args[0][:100]!r})"
    return method


class Channel:
    def __init__(self) -> None:
        self.inp = os.fdopen(0, "rb", buffering=0)
        self.buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.inp.read(65536)
            if not chunk:
                raise EOFError("host closed the channel")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    @staticmethod
    def send(message: dict[str, Any]) -> None:
        """One line; ``message`` is JSON data already (``as_json``): nothing is turned into
        its ``str()`` on the way."""
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]


class Api:
    """Records commands; the host decides what they mean. Built from the trigger's method list."""

    def __init__(self, job: dict[str, Any], channel: Channel) -> None:
        self._commands: list[dict[str, Any]] = []
        self._channel = channel
        self._job = job
        groups: dict[str, Any] = {}
        for path in job.get("api", []):
            group, _, method = path.partition(".")
            groups.setdefault(group, Namespace(group))
            setattr(groups[group], method, self._recorder(path))
        groups["cache"] = Cache(channel)
        if "http" in job.get("features", []):
            groups["http"] = Http(channel)
        if "redirect" in groups:
            groups["redirect"].can_redirect = lambda: bool(job.get("interactive"))
            groups["redirect"].encode_token = encode_token
            groups["redirect"].validate_token = self._validate_token
        for name, namespace in groups.items():
            setattr(self, name, namespace)

    def _recorder(self, path: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            call = as_json({"args": list(args), "kwargs": kwargs}, labelled(path, args))
            self._commands.append({"op": path, **call})

        record.__name__ = path.rpartition(".")[2]
        return record

    def _validate_token(self, options: dict[str, Any]) -> dict[str, Any]:
        name = options.get("token_parameter_name", "session_token")
        request = self._job.get("event", {}).get("request", {})
        token = (request.get("body") or {}).get(name) or (request.get("query") or {}).get(name)
        if not token:
            raise ValueError(f"no {name} parameter on the request")
        return decode_token(token, options["secret"], self._job.get("state"))


class Namespace:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<api.{self._name}>"


class Cache:
    """``api.cache``: served by the host, scoped to this action, shared across executions."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def _call(self, label: str, **message: Any) -> Any:
        self._channel.send(as_json({"rpc": "cache", **message}, label))
        reply = json.loads(self._channel.readline())
        if reply.get("error"):
            raise ValueError(reply["error"])
        return reply.get("result")

    def get(self, key: str) -> Any:
        return self._call("cache.get", op="get", key=key)

    def set(self, key: str, value: str, options: dict[str, Any] | None = None) -> Any:
        ttl = (options or {}).get("ttl")
        label = labelled("cache.set", (key, value))
        return self._call(label, op="set", key=key, value=value, ttl=ttl)

    def delete(self, key: str) -> Any:
        return self._call("cache.delete", op="delete", key=key)


class Http:
    """``api.http``: every call is an RPC the host serves through its SSRF-guarded client."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def request(self, method: str, url: str, **options: Any) -> ReadOnlyDict:
        verb = method.upper()
        message = {"rpc": "http", "method": verb, "url": as_json(url, f"http.{verb.lower()}")}
        for name, value in options.items():
            message[name] = as_json(value, f"http.{verb.lower()}({name}=...)")
        self._channel.send(message)
        reply = json.loads(self._channel.readline())
        if reply.get("error"):
            raise HttpError(reply["error"])
        return ReadOnlyDict(reply)

    def get(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("DELETE", url, **options)


class HttpError(Exception):
    pass


def _b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(options: dict[str, Any]) -> str:
    """``api.redirect.encode_token``: an HS256 JWT (RFC 7519) signed with the action's secret."""
    now = int(time.time())
    payload = {**as_json(options.get("payload") or {}, "redirect.encode_token(payload)")}
    payload["iat"] = now
    payload["exp"] = now + int(options.get("expires_in_seconds", 900))
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(options["secret"].encode(), f"{header}.{body}".encode(), hashlib.sha256)
    return f"{header}.{body}.{_b64(mac.digest())}"


def decode_token(token: str, secret: str, state: str | None) -> dict[str, Any]:
    header, body, signature = token.split(".")
    mac = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256)
    if not hmac.compare_digest(_b64(mac.digest()), signature):
        raise ValueError("the token's signature is invalid")
    payload = json.loads(_unb64(body))
    if payload.get("exp", 0) < time.time():
        raise ValueError("the token has expired")
    if state is not None and payload.get("state") != state:
        raise ValueError("the token belongs to another transaction")
    return payload


class CappedWriter(io.TextIOBase):
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def write(self, text: str) -> int:
        room = MAX_LOG_CHARS - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        if len(text) > room:
            self.truncated = True
        return len(text)

    def value(self) -> str:
        return "".join(self.parts) + (" [output truncated]" if self.truncated else "")


def confine(limits: dict[str, Any]) -> None:
    """rlimits, then seccomp; both are one-way for this process."""
    os.nice(int(limits.get("nice", 10)))
    # Not dumpable: no other process of this uid can read this one's memory through /proc.
    LIBC[0].prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    cpu = max(1, int(limits["cpu"]))
    memory = int(limits["memory"]) + ZYGOTE_SIZE[0]
    for name, value in (
        ("RLIMIT_CPU", cpu),
        ("RLIMIT_AS", memory),
        ("RLIMIT_NOFILE", 16),
        ("RLIMIT_FSIZE", 0),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_NPROC", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    install_filter(CHILD_FILTER[0])


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


CHILD_FILTER: list[bytes] = []  # the small filter each child adds (ZYGOTE_NEEDS)
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


def _address_space() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def run_child(limits: dict[str, Any], confined: bool = False) -> None:
    channel = Channel()
    started = time.perf_counter()
    commands: list[dict[str, Any]] = []
    out = CappedWriter()
    error = None
    try:
        job = json.loads(channel.readline())
        secrets = job.pop("secrets", {}) or {}
        event = dict(job.get("event") or {})
        event["secrets"] = secrets
        if "configuration" in job:
            event["configuration"] = job["configuration"]
        deps = job.get("deps")
        if deps:
            sys.path.insert(0, deps)
        if not confined:
            confine(limits)
        sys.stdout = sys.stderr = out
        api = Api(job, channel)
        namespace: dict[str, Any] = {"__name__": "action", "__builtins__": builtins}
        exec(compile(job["code"], "action.py", "exec"), namespace)  # noqa: S102 (sandboxed)
        handler = namespace.get(job["entry"])
        if not callable(handler):
            raise LookupError(f"the action does not define {job['entry']}(event, api)")
        handler(ReadOnlyDict(event), api)
        commands = api._commands
    except MemoryError:
        error = {"kind": "memory", "message": "the action ran out of memory"}
    except BaseException as exc:  # noqa: BLE001 (anything the action raises is reported)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "action.py"]
        where = f" (line {frames[-1].lineno})" if frames else ""
        error = {"kind": "exception", "message": f"{type(exc).__name__}: {exc}"[:1000] + where}
    sys.stdout = sys.__stdout__
    took = (time.perf_counter() - started) * 1000
    result = {"done": True, "commands": commands, "logs": out.value(), "error": error, "ms": took}
    try:
        channel.send(result)
    except (TypeError, ValueError):  # the action put something into api._commands itself
        error = {"kind": "exception", "message": "the action's commands are not JSON"}
        channel.send({**result, "commands": [], "error": error})
    os._exit(0)


# ---------------------------------------------------------------------------- zygote side
def zygote() -> None:
    # Not dumpable, before any fork (children inherit it): a child must not open the zygote's
    # /proc/<pid>/mem, fd or environ, nor a sibling's while it still holds its job unconfined.
    LIBC[0].prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    # Forking the next spare is background work: the request waiting on an execution's result
    # comes first (a child then adds its own nice on top of this one).
    os.nice(5)
    control = socket.socket(fileno=CONTROL_FD)
    children: dict[int, tuple[str, float]] = {}  # pid -> (execution id, deadline)
    by_id: dict[str, int] = {}
    # Warm the imports a child needs so that forking is all that is left per execution.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) > 2:  # where pyseccomp lives when not bound beside us (insecure dev)
        sys.path.insert(0, sys.argv[2])
    # No /etc/ld.so.cache and no /tmp in here: name the libraries instead of searching.
    ctypes.util.find_library = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}.get  # type: ignore[assignment]
    zygote_only = tuple(name for name in DENIED_SYSCALLS if name not in ZYGOTE_NEEDS)
    install_filter(export_filter(build_filter(zygote_only)))
    CHILD_FILTER.append(export_filter(build_filter(ZYGOTE_NEEDS)))
    ZYGOTE_SIZE[0] = _address_space()

    # Children only read the zygote's objects: keep the collector from touching (and so
    # copying) every page of them after each fork.
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


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One order and the descriptors that came with it; (None, []) at end-of-file."""
    fds = array.array("i")
    message, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(2 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not message:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(message), list(fds)


def become_execution(request: dict[str, Any], fds: list[int], confined: bool = False) -> None:
    """In a fresh child: the job's pipes on fds 0 and 1, nothing else open; run it; exit."""
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    os.closerange(2, 1 << 16)
    os.open("/dev/null", os.O_WRONLY)  # fd 2
    run_child(request, confined)


def start_child(control: socket.socket, request: dict[str, Any], fds: list[int]) -> int:
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

    def __init__(self, pid: int, sock: socket.socket, limits: dict[str, Any]) -> None:
        self.pid = pid
        self.sock = sock
        self.limits = limits

    @classmethod
    def fork(cls, control: socket.socket, order: dict[str, Any]) -> Spare | None:
        limits = {
            "memory": order["memory"],
            "nice": order.get("nice", 10),
            "cpu": max(int(order.get("cpu_ceiling", 0)), int(order["cpu"])),
        }
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:  # RLIMIT or memory: run on demand instead
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            gc.disable()
            control.close()
            ours.close()
            os.setsid()
            confine(limits)
            request, fds = receive(theirs)
            if request is None or len(fds) != 2:
                os._exit(0)  # the zygote went away, or sent no job
            theirs.close()
            become_execution(request, fds, confined=True)
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
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            self.sock.sendmsg([json.dumps(request).encode()], ancillary)
            return self.pid
        except OSError:
            _kill(self.pid)
            os.waitpid(self.pid, 0)
            return 0
        finally:
            self.sock.close()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    zygote()
