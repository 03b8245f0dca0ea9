"""One execution, in a child of the zygote: read the job, confine, run the action, answer."""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
import time
import traceback
from typing import Any

from .api import Api, Channel
from .confine import confine
from .values import ReadOnlyDict

MAX_LOG_CHARS = 4096


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
