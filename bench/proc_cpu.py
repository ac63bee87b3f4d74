"""CPU seconds a process and all its descendants have used (Linux /proc): the benches divide the
server's CPU by the work done, a figure that holds up on a shared machine, where throughput
mostly measures how much of the CPU the server was given. PostgreSQL and RabbitMQ are other
processes: named_cpu_seconds("postgres") counts every PostgreSQL process on the machine (its
backends, writer, WAL writer …), which is the database's whole cost only while nothing else uses
it."""

from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stats(name: str | None = None) -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process we can read (only those whose command
    name is ``name``, when given)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command, rest = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if name is not None and command.split("(", 1)[-1] != name:
            continue
        fields = rest.split()
        # after the command: state ppid … utime (14th field of the line) stime (15th)
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def named_cpu_seconds(name: str) -> float:
    """CPU of every live process whose command name is ``name`` (e.g. "postgres")."""
    return sum(cpu for _, cpu in _stats(name).values())


def tree_cpu_seconds(*roots: int) -> float:
    """CPU of the roots and their live descendants (0 where /proc is missing)."""
    stats = _stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def process_cpu_seconds(pid: int) -> float:
    """CPU of one live process (all its threads, exited ones too) to the nanosecond, from the
    kernel's per-process CPU clock; /proc's ticks are 10 ms, too coarse for a short measurement
    of a few hundred calls (a quick run once read 0 and divided by it)."""
    # glibc's clock_getcpuclockid(pid): MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    return time.clock_gettime(((~pid) << 3) | 2)


def machine_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the whole machine so far, from /proc/stat's first line ((0, 0)
    where it is missing). Steal is time the hypervisor gave this VM's vCPUs to someone else."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0, 0
    # cpu user nice system idle iowait irq softirq steal [guest guest_nice: inside user/nice]
    counts = [int(v) for v in fields[1:9]]
    return (counts[7] if len(counts) > 7 else 0), sum(counts)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share (0–1) of the machine's CPU time between two machine_ticks() readings that the
    hypervisor took away. Above a few per cent, the figures of that run measure a contended host:
    the same code then costs more CPU per operation and serves fewer per second."""
    steal, total = after[0] - before[0], after[1] - before[1]
    return round(steal / total, 3) if total > 0 else None
