"""The Actions sandbox's CPU per execution against the fork floor, measured in the same run.

    .venv/bin/python bench/sandbox.py [--rounds 3] [--samples 300]

The floor is a bare CPython (``python -I -S``, no site, nothing imported) forking a child that
exits at once and waiting for it: what one fresh process per execution costs at the least. The
sandbox is one warm zygote running a trivial credentials-exchange action. Both are counted in
CPU time of the processes (utime + stime, theirs and their reaped children's, from
``getrusage`` and ``/proc/<pid>/stat``) and minor page faults, never wall clock: the machine is
shared. Rounds alternate floor and sandbox; the figures are the medians of the rounds.

The headline CPU and faults are of executions as the server runs them. Where the faults happen
comes from a third as many executions with ``profile`` (each reports its own counts at every
step; the report costs a few faults): ``zygote`` (the zygote itself, mostly the copy-on-write
of its own pages after each fork), and in the execution's process ``confinement`` (from the
fork to confined), ``job read`` (waiting for the pipes and parsing the job), ``api``,
``compile`` (loading the bytecode the host compiled, and running the module body),
``handler``, and ``reply+exit`` (the rest: the answer and the teardown).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CC_ACTION = (
    "def on_execute_credentials_exchange(event, api):\n"
    "    api.access_token.set_custom_claim('https://bench.test/0', event.client.client_id)\n"
)
JOB = {
    "entry": "on_execute_credentials_exchange",
    "code": CC_ACTION,  # Zygote.run sends it compiled, as the server does (idp's bytecode())
    "event": {"client": {"client_id": "bench"}},
    "secrets": {},
    "api": ["access_token.set_custom_claim"],
}
PROFILED = {**JOB, "profile": True}  # the execution reports its faults and CPU by phase
FLOOR = """
import gc, os, resource, sys
n = int(sys.argv[1])
if len(sys.argv) > 2:  # the zygote's modules loaded as the zygote loads them
    sys.path[:0] = sys.argv[2:]
    from sandboxed.zygote import name_libraries
    name_libraries()
    import pyseccomp
    gc.freeze()
before_self, before_kids = (resource.getrusage(who) for who in
    (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
after_self, after_kids = (resource.getrusage(who) for who in
    (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
cpu = lambda a, b: (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime)
faults = lambda a, b: a.ru_minflt - b.ru_minflt
print(cpu(after_self, before_self) + cpu(after_kids, before_kids),
      faults(after_self, before_self) + faults(after_kids, before_kids))
"""
# The least an execution must do, in a CPython of the zygote's size with its filters loaded: the
# child confines itself (the runtime's own confine: rlimits, the small seccomp filter), blocks
# once for its job on a pipe, decodes it, loads bytecode, runs a one-line handler, writes one
# answer line and exits. No bubblewrap, no zygote protocol, no api object, no read-only event.
# The parent here also writes the job and reads the answer (the host's share, not counted for
# the sandbox), so this floor is if anything generous to the sandbox.
MINIMAL = """
import binascii, builtins, gc, json, marshal, os, resource, sys
n = int(sys.argv[1])
sys.path[:0] = sys.argv[2:]
from sandboxed.zygote import name_libraries
name_libraries()
from sandboxed import confine as c
from sandboxed.values import DECODE, ENCODE
c.prepare(c.export_filter(c.build_filter(c.ZYGOTE_NEEDS)))
c.install_filter(c.export_filter(c.build_filter(
    tuple(name for name in c.DENIED_SYSCALLS if name not in c.ZYGOTE_NEEDS))))
c.ZYGOTE_SIZE[0] = c.address_space()
source = "def h(event, api):\\n    api.append(event['client']['client_id'])\\n"
code = compile(source, "a.py", "exec")
job = json.dumps({"bytecode": binascii.b2a_base64(marshal.dumps(code)).decode(),
                  "event": {"client": {"client_id": "bench"}}}).encode() + b"\\n"
limits = {"cpu": 6, "memory": 128 << 20, "nice": 10}
gc.freeze()
before = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
for _ in range(n):
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        c.confine(limits)
        got = DECODE(os.read(job_r, 65536).decode(), 0)[0]
        space = {"__builtins__": builtins}
        exec(marshal.loads(binascii.a2b_base64(got["bytecode"])), space)
        commands = []
        space["h"](got["event"], commands)
        os.write(out_w, ENCODE({"done": True, "commands": commands}).encode() + b"\\n")
        os._exit(0)
    os.write(job_w, job)
    os.read(out_r, 65536)
    os.waitpid(pid, 0)
    for fd in (job_r, job_w, out_r, out_w):
        os.close(fd)
after = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(sum((a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before)),
      sum(a.ru_minflt - b.ru_minflt for a, b in zip(after, before)))
"""
PHASES = ("zygote", "confinement", "job read", "api", "compile", "handler", "reply+exit")


def fork_floor(samples: int, zygote_sized: bool = False) -> tuple[float, float]:
    """CPU ms and minor faults per fork+exit+wait of a bare CPython, or of one that has
    imported what the zygote imports (the part of the cost that is the zygote's size)."""
    argv = [os.path.realpath(sys.executable), "-I", "-S", "-c", FLOOR, str(samples)]
    if zygote_sized:
        from idp.actions.runner.sandbox import RUNTIME, _pyseccomp_file

        argv += [str(RUNTIME.parent), str(_pyseccomp_file().parent)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]) * 1000 / samples, int(out[1]) / samples


def minimal_floor(samples: int) -> tuple[float, float]:
    """CPU ms and minor faults per execution of ``MINIMAL``."""
    from idp.actions.runner.sandbox import RUNTIME, _pyseccomp_file

    argv = [os.path.realpath(sys.executable), "-I", "-S", "-c", MINIMAL, str(samples)]
    argv += [str(RUNTIME.parent), str(_pyseccomp_file().parent)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]) * 1000 / samples, int(out[1]) / samples


def proc_stat(pid: int) -> list[int]:
    with open(f"/proc/{pid}/stat") as fh:
        return [int(x) for x in fh.read().rpartition(")")[2].split()[1:]]


def zygote_pid(zygote: Any) -> int:
    """bwrap's pid -> the zygote, its only child (``--as-pid-1``)."""
    bwrap = zygote.process.pid
    with open(f"/proc/{bwrap}/task/{bwrap}/children") as fh:
        return int(fh.read().split()[0])


def counters(pid: int) -> tuple[float, float, int, int]:
    """CPU seconds of the zygote and of its reaped children; their minor faults."""
    fields = proc_stat(pid)  # after the state: ppid pgrp session tty tpgid flags minflt cminflt
    tick = os.sysconf("SC_CLK_TCK")
    return ((fields[10] + fields[11]) / tick, (fields[12] + fields[13]) / tick,
            fields[6], fields[7])  # fmt: skip


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for row in fh:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []  # every thread's: granian's workers start zygotes from a thread
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def server_rss(master: int) -> list[str]:
    """RSS of each server worker under ``master`` and of each zygote under a worker
    (bubblewrap's only child), as report lines."""
    lines = []
    for worker in children(master):
        zygotes = [z for bwrap in children(worker) for z in children(bwrap)]
        sizes = ", ".join(f"{rss_mb(z):.1f}" for z in zygotes) or "none"
        lines.append(f"  worker {worker}: RSS {rss_mb(worker):.1f} MB; its zygotes {sizes} MB")
    return lines


def run_batch(zygote: Any, job: dict[str, Any], samples: int) -> dict[str, Any]:
    """``samples`` executions of ``job``: CPU ms and faults per execution of the zygote and of
    its reaped children, wall ms of each, and the phases each execution reported."""
    from idp.actions.runner.sandbox import Limits

    pid = zygote_pid(zygote)
    reported: dict[str, list[list[int]]] = {name: [] for name in PHASES[1:-1]}
    walls = []
    before = counters(pid)
    for _ in range(samples):
        start = time.perf_counter()
        outcome = zygote.run(job, Limits())
        walls.append((time.perf_counter() - start) * 1000)
        assert outcome.error is None, outcome.error
        for name, figures in (outcome.faults or {}).items():
            if name in reported:
                reported[name].append(figures)
    time.sleep(0.3)  # the zygote reaps its last children within 50 ms
    after = counters(pid)
    zygote_ms, child_ms = ((after[i] - before[i]) * 1000 / samples for i in (0, 1))
    zygote_faults, child_faults = ((after[i] - before[i]) / samples for i in (2, 3))
    return {
        "zygote_ms": zygote_ms,
        "child_ms": child_ms,
        "zygote_faults": zygote_faults,
        "child_faults": child_faults,
        "reported": reported,
        "walls": walls,
        "rss": rss_mb(pid),
    }


def sandbox_round(zygote: Any, samples: int) -> dict[str, Any]:
    """CPU ms and faults per execution as the server runs them (no profiling); then a third as
    many with ``profile`` for where they happen (the marks cost a few faults of their own)."""
    plain = run_batch(zygote, JOB, samples)
    profiled = run_batch(zygote, PROFILED, max(30, samples // 3))
    by_phase = {"zygote": profiled["zygote_faults"]}
    cpu_phase = {"zygote": profiled["zygote_ms"] * 1000}
    for name, values in profiled["reported"].items():
        by_phase[name] = statistics.mean(v[0] for v in values) if values else 0.0
        cpu_phase[name] = statistics.mean(v[1] for v in values) if values else 0.0
    by_phase["reply+exit"] = profiled["child_faults"] - sum(by_phase[p] for p in PHASES[1:-1])
    cpu_phase["reply+exit"] = profiled["child_ms"] * 1000 - sum(cpu_phase[p] for p in PHASES[1:-1])
    return {
        "cpu_ms": plain["zygote_ms"] + plain["child_ms"],
        "zygote_ms": plain["zygote_ms"],
        "child_ms": plain["child_ms"],
        "faults": plain["zygote_faults"] + plain["child_faults"],
        "phases": by_phase,
        "cpu_phases": cpu_phase,
        "walls": plain["walls"],
        "zygote_rss_mb": plain["rss"],
    }


def measure(rounds: int = 3, samples: int = 300) -> dict[str, Any]:
    """Alternating rounds of the floor and the sandbox; medians of the rounds."""
    sys.path.insert(0, str(ROOT))
    from idp.actions.runner.sandbox import Limits, Zygote

    zygote = Zygote()
    floors: list[tuple[float, float]] = []
    sized: list[tuple[float, float]] = []
    minimal: list[tuple[float, float]] = []
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(30):
            zygote.run(JOB, Limits())
        for _ in range(rounds):
            # A fork costs a fifth of an execution: 3x the samples, for as long a measurement.
            floors.append(fork_floor(3 * samples))
            runs.append(sandbox_round(zygote, samples))
            sized.append(fork_floor(3 * samples, zygote_sized=True))
            minimal.append(minimal_floor(samples))
    finally:
        zygote.stop()
    floor_ms = statistics.median(f[0] for f in floors)
    cpu_ms = statistics.median(r["cpu_ms"] for r in runs)
    return {
        "floor_ms": floor_ms,
        "floor_faults": statistics.median(f[1] for f in floors),
        "sized_ms": statistics.median(f[0] for f in sized),
        "sized_faults": statistics.median(f[1] for f in sized),
        "minimal_ms": statistics.median(f[0] for f in minimal),
        "minimal_faults": statistics.median(f[1] for f in minimal),
        "minimal_ratio": statistics.median(
            m[0] / f[0] for m, f in zip(minimal, floors, strict=True)
        ),
        "cpu_ms": cpu_ms,
        "zygote_ms": statistics.median(r["zygote_ms"] for r in runs),
        "child_ms": statistics.median(r["child_ms"] for r in runs),
        "ratio": statistics.median(r["cpu_ms"] / f[0] for r, f in zip(runs, floors, strict=True)),
        "sized_ratio": statistics.median(
            r["cpu_ms"] / f[0] for r, f in zip(runs, sized, strict=True)
        ),
        "faults": statistics.median(r["faults"] for r in runs),
        "phases": {p: statistics.median(r["phases"][p] for r in runs) for p in PHASES},
        "cpu_phases": {p: statistics.median(r["cpu_phases"][p] for r in runs) for p in PHASES},
        "walls": [w for r in runs for w in r["walls"]],
        "zygote_rss_mb": max(r["zygote_rss_mb"] for r in runs),
    }


def report(figures: dict[str, Any]) -> list[str]:
    phases = ", ".join(f"{name} {figures['phases'][name]:.0f}" for name in PHASES)
    cpu = ", ".join(f"{name} {figures['cpu_phases'][name] / 1000:.2f}" for name in PHASES)
    return [
        f"  sandbox CPU per execution: {figures['cpu_ms']:.2f} ms (zygote "
        f"{figures['zygote_ms']:.2f}, execution process {figures['child_ms']:.2f}); bare "
        f"CPython fork+exit+wait {figures['floor_ms']:.2f} ms -> ratio {figures['ratio']:.2f} "
        f"(target <= 2.0) {'MET' if figures['ratio'] <= 2.0 else 'NOT MET'}",
        f"  the same fork+exit+wait from a CPython that imported what the zygote imports: "
        f"{figures['sized_ms']:.2f} ms, {figures['sized_faults']:.0f} faults -> ratio "
        f"{figures['sized_ratio']:.2f}",
        f"  the least an execution must do in such a CPython (confine, read the job, load "
        f"bytecode, run a handler, answer; no zygote protocol, api or bubblewrap): "
        f"{figures['minimal_ms']:.2f} ms, {figures['minimal_faults']:.0f} faults -> "
        f"{figures['minimal_ratio']:.2f}x the bare fork",
        f"  minor faults per execution: {figures['faults']:.0f} (fork floor "
        f"{figures['floor_faults']:.0f}); where, in executions that report them: {phases}",
        f"  CPU ms by phase (same profiled executions): {cpu}",
        f"  zygote RSS {figures['zygote_rss_mb']:.1f} MB",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    figures = measure(args.rounds, args.samples)
    print("\n".join(report(figures)))
    walls = sorted(figures["walls"])
    p50, p99 = walls[len(walls) // 2], walls[int(0.99 * len(walls))]
    print(f"  sandbox round trip alone p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    if args.json:
        print(json.dumps({k: v for k, v in figures.items() if k != "walls"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
