"""One execution, in a child of the zygote: read the job, confine, run the action, answer."""

from __future__ import annotations

import builtins
import io
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

from .api import Api, Channel
from .confine import confine
from .values import ReadOnlyDict

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
    commands: list[dict[str, Any]] = []
    out = CappedWriter()
    error = None
    profile = False
    try:
        job = json.loads(channel.readline())
        mark("job read")
        profile = bool(job.get("profile"))
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
            mark("confinement")
        sys.stdout = sys.stderr = out
        api = Api(job, channel)
        mark("api")
        namespace: dict[str, Any] = {"__name__": "action", "__builtins__": builtins}
        exec(compile(job["code"], "action.py", "exec"), namespace)  # noqa: S102 (sandboxed)
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
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "action.py"]
        where = f" (line {frames[-1].lineno})" if frames else ""
        error = {"kind": "exception", "message": f"{type(exc).__name__}: {exc}"[:1000] + where}
    sys.stdout = sys.__stdout__
    took = (time.perf_counter() - started) * 1000
    result = {"done": True, "commands": commands, "logs": out.value(), "error": error, "ms": took}
    if profile:
        result["faults"] = phases()
    try:
        channel.send(result)
    except (TypeError, ValueError):  # the action put something into api._commands itself
        error = {"kind": "exception", "message": "the action's commands are not JSON"}
        channel.send({**result, "commands": [], "error": error})
    os._exit(0)


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
