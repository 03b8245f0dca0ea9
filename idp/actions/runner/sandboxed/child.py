"""One execution, in a child of the zygote: read the job, confine, run the action, answer."""

from __future__ import annotations

import binascii
import builtins
import io
import marshal
import os
import resource
import sys
import time
from typing import Any

from .api import Api, Channel
from .confine import confine
from .values import DECODE, ReadOnlyDict

MAX_LOG_CHARS = 4096
# Minor page faults and CPU microseconds of this process at each step (getrusage, ~1 us): a job
# with "profile" gets them back by phase, which is how the benchmark shows where copy-on-write
# happens and where the time goes.
MARKS: list[tuple[str, int, int]] = []


def mark(phase: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    MARKS.append((phase, usage.ru_minflt, int((usage.ru_utime + usage.ru_stime) * 1e6)))


class CappedWriter(io.TextIOBase):
    """The action's stdout and stderr: its first ``MAX_LOG_CHARS`` characters, then a mark."""

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


def run_child(limits: dict[str, Any], confined: bool = False) -> None:
    """Run the job that comes on fd 0 (child protocol), confined first unless a spare already
    is; answer on fd 1 and exit the process."""
    channel = Channel()
    started = time.perf_counter()
    try:
        job = DECODE(channel.readline().decode(), 0)[0]
        mark("job read")
        if not confined:
            confine(limits)
            mark("confinement")
    except BaseException as exc:  # noqa: BLE001 (reported as the execution's error)
        job = {"failed": f"{type(exc).__name__}: {exc}"[:1000]}
    result = execute(job, channel, started)
    try:
        channel.send(result)
    except (TypeError, ValueError):  # the action put something into api._commands itself
        error = {"kind": "exception", "message": "the action's commands are not JSON"}
        channel.send({**result, "commands": [], "error": error})
    os._exit(0)


def execute(job: dict[str, Any], channel: Channel, started: float) -> dict[str, Any]:
    """The job's action, run: the result line as a dict. No I/O of its own but the action's
    api calls on ``channel``; the zygote rehearses it (``rehearse``) before its first fork."""
    commands: list[dict[str, Any]] = []
    out = CappedWriter()
    error = None
    try:
        if "failed" in job:
            raise OSError(job["failed"])
        secrets = job.pop("secrets", {}) or {}
        event = dict(job.get("event") or {})
        event["secrets"] = secrets
        if "configuration" in job:
            event["configuration"] = job["configuration"]
        deps = job.get("deps")
        if deps:
            sys.path.insert(0, deps)
        sys.stdout = sys.stderr = out
        api = Api(job, channel)
        mark("api")
        namespace: dict[str, Any] = {"__name__": "action", "__builtins__": builtins}
        bytecode = job.get("bytecode")
        if bytecode:  # compiled by the host, once per action version (the same interpreter)
            code = marshal.loads(binascii.a2b_base64(bytecode))  # noqa: S302 (the host wrote it)
        else:
            code = compile(job["code"], "action.py", "exec")
        exec(code, namespace)  # noqa: S102 (sandboxed)
        mark("compile")
        handler = namespace.get(job["entry"])
        if not callable(handler):
            raise LookupError(f"the action does not define {job['entry']}(event, api)")
        handler(ReadOnlyDict(event), api)
        mark("handler")
        commands = api._commands
    except MemoryError:
        error = {"kind": "memory", "message": "the action ran out of memory"}
    except BaseException as exc:  # noqa: BLE001 (anything the action raises is reported)
        message = f"{type(exc).__name__}: {exc}"[:1000] + _where(exc)
        error = {"kind": "exception", "message": message}
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    took = (time.perf_counter() - started) * 1000
    result = {"done": True, "commands": commands, "logs": out.value(), "error": error, "ms": took}
    if job.get("profile"):
        result["faults"] = phases()
    return result


def rehearse(times: int = 64) -> None:
    """In the zygote, before it forks: run ``execute`` on a job of our own (no operator code,
    no secret, no I/O) until CPython has specialised its code (3.11 quickens a function after
    8 calls and specialises an instruction after ~32 runs) and filled its type-attribute cache.
    Each child then runs that path without writing to the zygote's code objects, cache and
    interned names, which would otherwise be pages it copies (~100 per execution here)."""
    code = compile(REHEARSAL, "rehearsal.py", "exec")
    job = {
        "entry": "on_rehearsal",
        "bytecode": binascii.b2a_base64(marshal.dumps(code)).decode(),
        "event": {"client": {"client_id": "rehearsal", "metadata": {}}, "scopes": ["a"]},
        "api": ["access.deny", "access_token.set_custom_claim"],
        "features": ["http"],
        "configuration": {},
    }
    for _ in range(times):
        result = execute({**job, "secrets": {}}, Channel(), time.perf_counter())
        assert result["error"] is None, result["error"]
    MARKS.clear()


REHEARSAL = """
def on_rehearsal(event, api):
    api.access_token.set_custom_claim("https://rehearsal/claim", event.client.client_id)
"""


def _where(exc: BaseException) -> str:
    """`` (line N)``: the last line of the action's own code in the traceback."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "action.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line is not None else ""


def phases() -> dict[str, list[int]]:
    """[faults, CPU us] per phase: each mark's counts less the previous one's (from the fork)."""
    out: dict[str, list[int]] = {}
    faults = cpu = 0
    for phase, now_faults, now_cpu in MARKS:
        seen = out.setdefault(phase, [0, 0])
        seen[0] += now_faults - faults
        seen[1] += now_cpu - cpu
        faults, cpu = now_faults, now_cpu
    return out
