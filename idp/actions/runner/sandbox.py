"""The host side of the Actions sandbox: bubblewrap zygotes and one execution over pipes.

A zygote is one bubblewrap sandbox (every namespace unshared, no network, read-only root, uid
65534, no capabilities, empty environment) running the ``sandboxed`` package (stdlib only). Per
execution the host hands it two fresh pipes; it forks a child that confines itself (rlimits,
seccomp) and runs the action once. Starting a sandbox costs ~70 ms; forking a warm zygote costs
~1 ms (ARCHITECTURE.md §11).

Zygotes are per process (gunicorn workers each get their own) and per dependency directory, since
an action may see its own dependencies and nothing else. The zygote exits when its control socket
closes, so a crashed worker leaves nothing behind; no ``--die-with-parent`` and its per-thread
trap (SECURITY.md §4.4).
"""

from __future__ import annotations
import __future__

import array
import binascii
import contextlib
import functools
import json
import logging
import marshal
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUNTIME = Path(__file__).with_name("sandboxed")  # the package the zygote runs (stdlib only)
SANDBOX_RUNTIME = "/sandbox/runtime"
SANDBOX_DEPS = "/sandbox/deps"
MAX_LINE = 64 * 1024  # one message from the sandbox (ARCHITECTURE.md §11)
MAX_OUTPUT = 512 * 1024  # everything one execution may write
MAX_RPCS = 5  # api.http calls per execution
# The dynamic linker resolves every symbol when the zygote starts rather than on first call: a
# child's first call of a libc or libpython function would otherwise write the resolved address
# into the zygote's relocation tables, pages each execution copied again.
BIND_NOW = ("--setenv", "LD_BIND_NOW", "1")


@dataclass(frozen=True)
class Limits:
    timeout: float = 5.0  # wall clock, seconds
    memory: int = 128 * 1024 * 1024  # bytes beyond the interpreter's own
    nice: int = 10  # a spinning action yields the CPU to the server
    cpu_ceiling: int = 0  # seconds: the trigger's budget; spares are confined to it


@dataclass
class Outcome:
    commands: list[dict[str, Any]]
    logs: str
    error: dict[str, str] | None
    ms: float
    # for a job with "profile": [minor faults, CPU us] of the execution by phase (untrusted)
    faults: dict[str, list[int]] | None = None


class SandboxError(Exception):
    """The sandbox could not run the job at all (as opposed to the action failing)."""


def _pyseccomp_file() -> Path:
    import pyseccomp

    return Path(pyseccomp.__file__ or "")


def interpreter() -> Path:
    return Path(os.path.realpath(sys.executable))


def bwrap_argv(control_fd: int, deps: Path | None) -> list[str]:
    """Level A of ARCHITECTURE.md §11 / SECURITY.md §4.3, minus any writable mount."""
    python = interpreter()
    prefix = Path(sys.base_prefix).resolve()
    argv = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-all",
        "--as-pid-1",  # no bwrap reaper inside: it was dumpable and unconfined (/proc/1/mem)
        "--new-session",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/usr/sbin",
        *BIND_NOW,
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin",
        "--proc", "/proc",
        "--dev", "/dev",
    ]  # fmt: skip
    if not str(prefix).startswith("/usr/"):
        argv += ["--ro-bind", str(prefix), str(prefix)]
    # The package's modules one by one: the host's __pycache__ stays out, the listing is exact.
    for module in sorted(RUNTIME.glob("*.py")):
        argv += ["--ro-bind", str(module), f"{SANDBOX_RUNTIME}/{RUNTIME.name}/{module.name}"]
    argv += ["--ro-bind", str(_pyseccomp_file()), f"{SANDBOX_RUNTIME}/pyseccomp.py"]
    if deps is not None:
        argv += ["--ro-bind", str(deps), SANDBOX_DEPS]
    argv += [
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--uid", "65534", "--gid", "65534",
        "--cap-drop", "ALL",
        "--chdir", "/",
        "--hostname", "sandbox",
        "--",
        str(python), "-I", "-S", "-B", f"{SANDBOX_RUNTIME}/{RUNTIME.name}", str(control_fd),
    ]  # fmt: skip
    return argv


FUTURE_FLAGS = __future__.annotations.compiler_flag


@functools.lru_cache(maxsize=64)
def bytecode(code: str) -> str | None:
    """The action compiled once per worker and version, as marshal data in base64 for the job,
    or None when it does not compile (the child then compiles it and reports the error as it
    always did). Same interpreter as the sandbox's, same flags as its ``compile`` had there:
    ``annotations`` (inherited from the runtime's modules), no optimisation (``-I -S -B``).
    Compiling is not running: nothing of the action executes here."""
    try:
        compiled = compile(
            code, "action.py", "exec", flags=FUTURE_FLAGS, dont_inherit=True, optimize=0
        )
    except Exception:  # noqa: BLE001 (any refusal is the child's to report)
        return None
    return binascii.b2a_base64(marshal.dumps(compiled), newline=False).decode()


class Zygote:
    """One warm sandbox; ``run`` may be called from several threads at once."""

    def __init__(self, deps: Path | None = None) -> None:
        self.deps = deps
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self.pid = os.getpid()

    def start(self) -> None:
        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
                bwrap_argv(inside.fileno(), self.deps),
                pass_fds=(inside.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if os.environ.get("IDP_SANDBOX_DEBUG") else subprocess.DEVNULL,
                env={},
                start_new_session=True,
            )
        finally:
            inside.close()
        self.control = host

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.pid == os.getpid()

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, 9)
            self.process.wait(timeout=5)
            self.process = None

    def _send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        with self.lock:
            if not self.alive():
                self.stop()
                self.start()
            assert self.control is not None
            ancillary = []
            if fds:
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            self.control.sendmsg([json.dumps(message).encode()], ancillary)

    def run(
        self,
        job: dict[str, Any],
        limits: Limits,
        rpc: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Outcome:
        run_id = uuid.uuid4().hex
        compiled = bytecode(job["code"]) if isinstance(job.get("code"), str) else None
        if compiled is not None:  # the child loads it rather than compiling the source again
            job = {**job, "bytecode": compiled}
            del job["code"]
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            order = {
                "run": run_id,
                "timeout": limits.timeout + 0.2,
                "cpu": int(limits.timeout) + 1,
                "memory": limits.memory,
                "nice": limits.nice,
                "cpu_ceiling": limits.cpu_ceiling,
            }
            try:
                self._send(order, [job_r, res_w])
            except OSError as exc:
                raise SandboxError(f"the sandbox is not available: {exc}") from exc
        finally:
            os.close(job_r)
            os.close(res_w)
        try:
            return _converse(job_w, res_r, job, limits.timeout, rpc)
        except TimeoutError:
            self._kill(run_id)
            return Outcome([], "", {"kind": "timeout", "message": "the action timed out"}, 0.0)
        except _Invalid as exc:
            self._kill(run_id)
            return Outcome([], "", {"kind": "invalid_output", "message": str(exc)}, 0.0)
        finally:
            for fd in (job_w, res_r):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _kill(self, run_id: str) -> None:
        try:
            self._send({"kill": run_id})
        except OSError:
            log.warning("could not reach the sandbox to stop execution %s", run_id)


class _Invalid(Exception):
    pass


def _converse(
    job_w: int,
    res_r: int,
    job: dict[str, Any],
    timeout: float,
    rpc: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> Outcome:
    """Feed the job, answer RPCs, return the final line; everything read is untrusted."""
    deadline = time.monotonic() + timeout
    pending = memoryview(json.dumps(job, separators=(",", ":")).encode() + b"\n")
    os.set_blocking(job_w, False)
    buffer = b""
    total = 0
    rpcs = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        writers = [job_w] if pending else []
        readable, writable, _ = select.select([res_r], writers, [], remaining)
        if writable:
            try:
                pending = pending[os.write(job_w, pending) :]
            except BlockingIOError:
                pass
            except BrokenPipeError:
                pending = memoryview(b"")
        if not readable:
            continue
        chunk = os.read(res_r, 65536)
        if not chunk:
            return Outcome([], "", {"kind": "crash", "message": "the action's process died"}, 0)
        total += len(chunk)
        if total > MAX_OUTPUT:
            raise _Invalid("the action wrote more output than allowed")
        buffer += chunk
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            message = _parse(line)
            if message.get("done") is True:
                return _outcome(message)
            if "rpc" in message and rpc is not None and rpcs < MAX_RPCS and not pending:
                rpcs += 1
                reply = rpc(message)
                os.set_blocking(job_w, True)
                os.write(job_w, json.dumps(reply).encode() + b"\n")
                os.set_blocking(job_w, False)
            elif "rpc" in message:
                os.write(job_w, b'{"error": "no more outbound calls allowed"}\n')
            else:
                raise _Invalid("the action wrote an unexpected line")
        if len(buffer) > MAX_LINE:
            raise _Invalid("a line from the action is too long")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise _Invalid("a line from the action is too long")
    try:
        # NaN and Infinity are not JSON (RFC 8259 §6): refused here, at the boundary.
        message = json.loads(line, parse_constant=_not_json)
    except ValueError:
        raise _Invalid("the action wrote something that is not JSON") from None
    if not isinstance(message, dict):
        raise _Invalid("the action wrote something that is not an object")
    return message


def _outcome(message: dict[str, Any]) -> Outcome:
    commands = message.get("commands")
    error = message.get("error")
    if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
        raise _Invalid("the action's result has no command list")
    if error is not None and not (
        isinstance(error, dict) and all(isinstance(v, str) for v in error.values())
    ):
        raise _Invalid("the action's result has a malformed error")
    logs = message.get("logs")
    ms = message.get("ms")
    faults = message.get("faults")
    return Outcome(
        commands=commands,
        logs=logs if isinstance(logs, str) else "",
        error=error,
        ms=float(ms) if isinstance(ms, int | float) else 0.0,
        faults={k: v for k, v in faults.items() if isinstance(v, list)}
        if isinstance(faults, dict)
        else None,
    )
