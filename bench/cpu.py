"""CPU accounting: how much of the machine other processes used while we measured.

On a shared 2-core machine a test suite running next to the benchmark halves its figures. The
share of CPU time that belongs neither to the process group under test (nor the database server
it uses), nor to our own children (wrk), nor to this process is reported with every figure so
that a noisy run is recognised.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds at one instant."""

    machine_busy: float
    machine_total: float
    ours: float


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds over all CPUs since boot. Busy is user, nice, system and steal;
    interrupt time is left out since it is not charged to any process."""
    fields = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + steal
    return busy / CLK_TCK, (busy + idle + iowait + irq + softirq) / CLK_TCK


def group_cpu(pgid: int, comms: frozenset[str] = frozenset()) -> float:
    """CPU seconds used so far by the live processes of process group ``pgid`` and by those
    whose command name is in ``comms`` (the database server the target talks to)."""
    total = 0
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        comm = head.split("(", 1)[-1]
        fields = tail.split()
        # after the command: state(3) ppid(4) pgrp(5) ... utime(14) stime(15)
        if int(fields[2]) == pgid or comm in comms:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def own_cpu() -> float:
    """CPU seconds of this process and of its finished children (wrk, the CLI)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def snapshot(pgid: int | None = None, comms: frozenset[str] = frozenset()) -> CpuSnapshot:
    busy, total = machine_cpu()
    ours = own_cpu() + (group_cpu(pgid, comms) if pgid is not None else 0.0)
    return CpuSnapshot(busy, total, ours)


def foreign_share(before: CpuSnapshot, after: CpuSnapshot) -> float | None:
    """Share (0-1) of the machine's CPU capacity used by other processes between the two."""
    capacity = after.machine_total - before.machine_total
    if capacity <= 0:
        return None
    busy = after.machine_busy - before.machine_busy
    ours = after.ours - before.ours
    return round(max(0.0, busy - ours) / capacity, 3)
