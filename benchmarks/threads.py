"""torch's default CPU threads against gapbench's choice (harness/threads.py), with and without load.

A fixed workload, the forward passes of the embedded SmolLM2-135M-Instruct over a batch of prompts
(the matmuls that dominate generation and verification), timed in a fresh process per setting (OpenMP
reads its settings once, at load):

- ``default``: no OMP_NUM_THREADS nor OMP_WAIT_POLICY: torch's one thread per CPU, spinning waits;
- ``gapbench``: what ``gapbench run`` sets when OMP_NUM_THREADS is unset (harness/threads.py).

Each twice: as the machine is, then with ``--spinners`` background processes (started here, stopped
by their pid at the end) each spinning on one core. Prints seconds, ratios and the load average.

    python benchmarks/threads.py [--batch 4] [--tokens 128] [--repeats 3] [--spinners 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import torch
from transformers import AutoModelForCausalLM
from gapbench.harness.models import embedded
batch, tokens, repeats = map(int, sys.argv[1:4])
model = AutoModelForCausalLM.from_pretrained(embedded.ensure(log=lambda *_: None), dtype=torch.float32).eval()
ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    model(ids)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        model(ids)
print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))
"""

SPIN = "while True: pass"


def measure(setting: str, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if setting == "gapbench":
        sys.path.insert(0, str(ROOT))
        from gapbench.harness.threads import choose

        choice = choose(env)
        env.update(OMP_NUM_THREADS=str(choice.threads), OMP_WAIT_POLICY=choice.wait_policy or "PASSIVE")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(args.batch), str(args.tokens), str(args.repeats)], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spinners", type=int, default=2)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; forward of {args.batch} x {args.tokens} tokens x {args.repeats} (SmolLM2-135M, fp32)")
    rows = []
    for load in ("as is", f"+{args.spinners} spinners"):
        spinners = []
        if load != "as is":
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.spinners)]
            time.sleep(2)
        try:
            avg = os.getloadavg()[0]
            got = {s: measure(s, args) for s in ("default", "gapbench")}
        finally:
            for p in spinners:  # only the processes started here, by pid
                p.kill()
                p.wait()
        ratio = got["default"]["seconds"] / got["gapbench"]["seconds"]
        rows.append((load, avg, got, ratio))
        print(
            f"{load:12s} load {avg:5.2f}: default {got['default']['seconds']:6.2f} s ({got['default']['threads']} threads), "
            f"gapbench {got['gapbench']['seconds']:6.2f} s ({got['gapbench']['threads']} threads): default / gapbench = {ratio:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
