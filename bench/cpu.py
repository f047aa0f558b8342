"""CPU time of the processes that share the machine, read from /proc, per benchmark phase."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is index 0)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def group_cpu_seconds(pgid: int) -> float:
    """User + system seconds of every live process in a process group (all their threads)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is not None and int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def pid_cpu_seconds(pid: int | None) -> float:
    """User + system seconds of one process (all its threads); 0 if it is gone."""
    fields = _stat_fields(pid) if pid is not None else None
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def pid_of(*names: str) -> int | None:
    """The first process whose command name is one of `names` (e.g. mariadbd, redis-server)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
        except OSError:
            continue
        if comm in names:
            return int(entry.name)
    return None


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (first line of /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


def children_cpu_seconds() -> float:
    """CPU of this process's reaped children (wrk, the raw-DB client): read before and after."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


MIN_WINDOW_S = 1.0


@dataclass
class CpuMeter:
    """Samples named process groups at the start and end of a phase.

    groups: name -> process-group id (each Stack process leads its own group; MariaDB and Redis
    are single processes, so their pid is their group for this purpose only if they lead one,
    hence `pids` for those).
    """

    groups: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)
    _children: float = 0.0
    _busy: float = 0.0
    _t0: float = 0.0

    def _sample(self) -> dict[str, float]:
        out = {name: group_cpu_seconds(pgid) for name, pgid in self.groups.items()}
        for name, pid in self.pids.items():
            out[name] = pid_cpu_seconds(pid)
        return out

    def start(self) -> None:
        self._start = self._sample()
        self._children = children_cpu_seconds()
        self._busy = machine_busy_seconds()
        self._t0 = time.monotonic()

    def stop(self, child_name: str | None = None) -> dict[str, float]:
        """Per-process CPU over the phase as a percentage of one core (the machine has nproc*100%).

        child_name: what to call the child reaped during the phase (wrk), if any.
        "other" is every other process on the machine, this benchmark's own driver included.
        Empty for a window under MIN_WINDOW_S: the kernel counts CPU time in 10 ms ticks, and a
        drain that ended within 50 ms once read "other 191%".
        """
        wall = time.monotonic() - self._t0
        if wall < MIN_WINDOW_S:
            return {}
        end = self._sample()
        shares = {name: 100 * (end[name] - self._start.get(name, 0.0)) / wall for name in end}
        if child_name is not None:
            shares[child_name] = 100 * (children_cpu_seconds() - self._children) / wall
        busy = 100 * (machine_busy_seconds() - self._busy) / wall
        shares["other"] = max(0.0, busy - sum(shares.values()))
        return shares
