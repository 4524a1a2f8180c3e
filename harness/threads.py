"""How many CPU threads torch uses, chosen so that a machine shared with other work does not collapse.

torch's default is one OpenMP thread per logical CPU, each spinning while it waits for the others
(OpenMP's ACTIVE wait). On a machine whose cores are busy with other work, those threads wait on
each other through the scheduler: a cached default run took 11 min 37 s with the default and 1 min
30 s with ``OMP_NUM_THREADS=1`` (benchmarks/threads.py measures it). So, unless the user set
``OMP_NUM_THREADS`` (then that is used, as is), gapbench takes the physical cores it may run on
(``os.sched_getaffinity``) less those other work keeps busy now (:func:`busy_cpus`), at least 1, and sets
``OMP_WAIT_POLICY=PASSIVE`` (threads sleep rather than spin while waiting) unless it is set. Both go
into the environment before torch is imported (OpenMP reads them once, at load), and into
``torch.set_num_threads`` where torch is already loaded. The choice is printed in the run's header
and recorded in results.json (``run.threads``).

This module imports nothing of gapbench's (the command line calls it before anything loads torch).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str  # why this many: "OMP_NUM_THREADS", or the cores and load it was chosen from
    wait_policy: str | None  # OMP_WAIT_POLICY as it is set for this process

    def line(self) -> str:
        return f"CPU threads: {self.threads} ({self.reason}; OMP_WAIT_POLICY={self.wait_policy or 'unset'})"


def allowed_cpus() -> list[int]:
    """The logical CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int]) -> int:
    """How many physical cores the logical ``cpus`` are on (hyper-threads counted once), from
    /sys's topology; the number of ``cpus`` where it cannot be read."""
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topo.joinpath("physical_package_id").read_text().strip(), topo.joinpath("core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return len(cores) or len(cpus)


def choose(environ: dict | None = None, load: float | None = None) -> ThreadChoice:
    """The thread count and wait policy for this process (see the module docstring). ``load``: the
    1-minute load average (read from the system when None)."""
    env = os.environ if environ is None else environ
    wait = env.get("OMP_WAIT_POLICY") or "PASSIVE"
    given = str(env.get("OMP_NUM_THREADS") or "").strip()
    if given.isdigit() and int(given) > 0:
        return ThreadChoice(int(given), "OMP_NUM_THREADS", wait)
    cpus = allowed_cpus()
    cores = physical_cores(cpus)
    what = "load average"
    if load is None:
        load = busy_cpus()
        what = "CPUs busy now"
        if load is None:
            try:
                load, what = os.getloadavg()[0], "load average"
            except OSError:
                load = 0.0
    free = len(cpus) - int(load + 0.5)  # the logical CPUs the other work leaves idle
    threads = max(1, min(cores, free))
    return ThreadChoice(threads, f"auto: {cores} physical core(s) of {len(cpus)} CPU(s) allowed, {what} {load:.2f}; set OMP_NUM_THREADS to choose", wait)


def busy_cpus(seconds: float = 0.25) -> float | None:
    """How many CPUs other work keeps busy now: the non-idle share of /proc/stat's CPU time over
    ``seconds``, times the CPUs (None where /proc/stat cannot be read). The 1-minute load average
    lags: a job that ended a minute ago still counts there, and a quiet machine got 1 thread of 2
    (benchmarks/threads.py)."""
    import time

    def sample() -> tuple[int, int] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return None
        if not fields or fields[0] != "cpu":
            return None
        ticks = [int(x) for x in fields[1:] if x.isdigit()]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
        return sum(ticks[:8]), idle

    first = sample()
    time.sleep(seconds)
    second = sample()
    if first is None or second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (total - idle) / total * (os.cpu_count() or 1)


_applied: ThreadChoice | None = None


def apply(choice: ThreadChoice | None = None) -> ThreadChoice:
    """Put ``choice`` (else :func:`choose`'s) into effect for this process, once: the environment for
    OpenMP before torch loads, and torch itself where it is loaded already."""
    global _applied
    if _applied is not None:
        return _applied
    choice = choice or choose()
    os.environ.setdefault("OMP_NUM_THREADS", str(choice.threads))
    if choice.wait_policy:
        os.environ.setdefault("OMP_WAIT_POLICY", choice.wait_policy)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(choice.threads)
    _applied = choice
    return choice


def current() -> ThreadChoice | None:
    """The choice :func:`apply` made in this process (None where it was not called: a library user's
    own process keeps its own settings)."""
    return _applied
