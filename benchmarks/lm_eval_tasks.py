"""lm-eval's own tasks as gapbench tasks: J(f), the gap and J(f) against lm-eval's exact_match.

Runs ``lm-eval:NAME`` for the three local tasks of examples/lm-eval-local/ (lm-eval's gsm8k, nq_open and
hendrycks_math500 on the reference data) with one model, then hands each run's stored responses to
lm-eval itself (``harness/lm_eval_replay.py``: ``lm_eval.simple_evaluate`` with a model that replays them)
and prints, per task, J(f), the gap of each verifier and lm-eval's exact_match of the same responses.

    OMP_NUM_THREADS=1 python benchmarks/lm_eval_tasks.py --data-dir ../shared/data --limit 10 --n 2 \
        --max-gen-toks 128 --verifiers mc
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from gapbench.harness.lm_eval_replay import lm_eval_scores
from gapbench.harness.runner import Runner
from gapbench.harness.settings import RunOptions
from gapbench.harness.store import RunStore
from gapbench.tasks.lm_eval_task import task_manager

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "examples" / "lm-eval-local"
TASKS = ("gsm8k_local", "nq_open_local", "hendrycks_math500_local")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--max-gen-toks", type=int, default=128)
    p.add_argument("--verifiers", default="mc")
    p.add_argument("--out", default="runs/lm-eval-tasks")
    p.add_argument("--tasks", default=",".join(TASKS))
    args = p.parse_args()
    names = [t for t in args.tasks.split(",") if t]
    data = Path(args.data_dir).resolve()
    opts = RunOptions(
        model=args.model,
        tasks=[f"lm-eval:{n}" for n in names],
        task_args={f"lm-eval:{n}": {"include_path": str(INCLUDE)} for n in names},
        data_dir=str(data),
        verifiers=args.verifiers.split(","),
        n=args.n,
        limit=args.limit,
        max_gen_toks=args.max_gen_toks,
        out=args.out,
    )
    start = time.perf_counter()
    runner = Runner(opts)
    stored = runner.run_stored()
    model_s = time.perf_counter() - start
    rows = []
    for task, run in zip(runner.tasks, stored):
        r = run.results
        name = task.name.split(":", 1)[1]
        docs = task.docs(None, data, args.limit)
        samples = RunStore(Path(args.out) / task.name.replace(":", "-")).samples()
        prompts = [(task.generation_prompt(d), [samples[d.doc_id][i]["response"] for i in range(args.n)]) for d in docs]
        here = Path.cwd()
        os.chdir(data)  # lm-eval reads the YAML's relative data files from the working directory
        try:
            theirs = lm_eval_scores(name, prompts, task_manager=task_manager(str(INCLUDE)))
        finally:
            os.chdir(here)
        gaps = ", ".join(f"{m} {v.gap.value:+.3f}" for m, v in r.verifiers.items())
        for key, value in sorted(theirs.items()):
            metric, _, filt = key.partition(",")
            ours = r.generation.variants.get(f"{filt}/{metric}")
            if ours is None:
                continue
            rows.append(
                f"| {task.name} | {r.sizes.n_prompts} x {r.sizes.n} | {r.generation.J.value:.3f} | {gaps} | {filt} | "
                f"{ours:.3f} | {value:.3f} | {'yes' if abs(ours - value) < 1e-12 else 'NO'} |"
            )
    print(f"\nmodel {args.model}, {args.max_gen_toks} new tokens, model time {model_s:.0f} s\n")
    print("| task | prompts x n | J(f) | gap | filter | gapbench's mean g under it | lm-eval's own exact_match | equal |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
