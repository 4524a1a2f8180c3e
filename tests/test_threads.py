"""gapbench's CPU threads (harness/threads.py): the user's OMP_NUM_THREADS as is, else the physical
cores allowed less those the load average says are busy; OpenMP's threads sleep while they wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gapbench.harness import threads

ROOT = Path(__file__).resolve().parents[1]


def test_the_users_omp_num_threads_is_kept():
    choice = threads.choose({"OMP_NUM_THREADS": "3"}, load=0.0)
    assert (choice.threads, choice.reason, choice.wait_policy) == (3, "OMP_NUM_THREADS", "PASSIVE")
    assert threads.choose({"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}).wait_policy == "ACTIVE"


def test_auto_leaves_the_busy_cores_and_keeps_one():
    cores = threads.physical_cores(threads.allowed_cpus())
    cpus = len(threads.allowed_cpus())
    assert threads.choose({}, load=0.0).threads == min(cores, cpus)
    assert threads.choose({}, load=float(cpus) + 3).threads == 1  # every core busy: one thread, not a pile-up
    assert threads.choose({}, load=0.0).wait_policy == "PASSIVE"
    assert "load average 0.00" in threads.choose({}, load=0.0).reason


def test_the_command_line_sets_them_before_torch_loads_and_results_record_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    code = (
        "import sys; from gapbench.harness.cli import main; rc = main(sys.argv[1:]); import os, torch; "
        "print('THREADS', torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], os.environ['OMP_WAIT_POLICY'])"
    )
    args = ["run", "--model", "gapbench-fake", "--model-args", "arith=0.5", "--tasks", "arith", "--limit", "2", "--n", "1", "--n-boot", "0", "--verifiers", "oracle", "--out", str(tmp_path)]
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    _, torch_threads, omp, wait = proc.stdout.strip().splitlines()[-1].split()
    assert torch_threads == omp and wait == "PASSIVE"
    assert f"CPU threads: {omp} (auto:" in proc.stderr
    recorded = json.loads((tmp_path / "arith" / "results.json").read_text())["run"]["threads"]
    assert recorded["threads"] == int(omp) and recorded["omp_wait_policy"] == "PASSIVE"


def test_busy_cpus_reads_the_cpus_other_work_keeps_busy_now():
    """/proc/stat over a quarter second: a process spinning on a CPU beside it counts as about one."""
    import multiprocessing
    import os

    quiet = threads.busy_cpus()
    if quiet is None:
        pytest.skip("no /proc/stat here")
    assert 0.0 <= quiet <= (os.cpu_count() or 1)
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=_spin, args=(stop,))
    spinner.start()
    try:
        busy = threads.busy_cpus(0.5)
    finally:
        stop.set()
        spinner.join()
    assert busy is not None and busy >= 0.6  # the spinner's core, whatever else the machine does
    assert "CPUs busy now" in threads.choose({}).reason


def _spin(stop) -> None:
    while not stop.is_set():
        pass
