"""Benchmark: one lm-eval task run by lm-eval's command line with ``--model hf`` and with
``--model hf-prefix`` (gapbench's shared-prefix class), back to back, on the same model.

    python benchmarks/lm_eval_hf_prefix.py [--task gsm8k --data-dir ../shared/data] [--limit 8] [--max-gen-toks 64]

The task is gapbench's own lm-eval export (``gapbench lm-eval-tasks``, written to a temporary
folder), so every prompt carries the task's few-shot examples: the shared head that
``hf-prefix`` runs once. Both runs are the same command (``python -m gapbench.harness.models.lm_eval_cli``,
i.e. ``gapbench lm-eval``) with the same ``--limit``, ``--batch_size``, ``--device cpu`` and the
task's greedy decoding, and differ only in ``--model``. Prints each command's wall time (process
start, model and task loading included), lm-eval's own ``total_evaluation_time_seconds`` (from
its tracker's start: model and task loading included, process start not), the ratios, each run's
accuracy, and how many responses are identical. ``--repeats N`` alternates the two commands N
times and shows the best time of each: on a CPU shared with other jobs single times vary a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="gsm8k", help="a gapbench task (its lm-eval name is gapbench_<task>)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--max-gen-toks", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", default=None, help="checkpoint folder or hub id (default: the embedded model)")
    ap.add_argument("--repeats", type=int, default=1, help="run both commands this many times, alternating; the best time of each is shown")
    args = ap.parse_args()

    import torch

    from gapbench.harness import lm_eval_tasks
    from gapbench.harness.models import embedded as default_model

    model = args.model or str(default_model.ensure(log=lambda *_: None))
    name = lm_eval_tasks.lm_eval_name(args.task)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = lm_eval_tasks.generate(Path(tmp) / "tasks", tasks=[args.task], data_dir=args.data_dir, max_gen_toks=args.max_gen_toks)
        runs: dict[str, dict] = {}
        for attempt, backend in [(a, b) for a in range(args.repeats) for b in ("hf", "hf-prefix")]:
            out = Path(tmp) / f"{backend}-{attempt}"
            command = [
                sys.executable, "-m", "gapbench.harness.models.lm_eval_cli",
                "--model", backend, "--model_args", f"pretrained={model}", "--device", "cpu",
                "--include_path", str(folder), "--tasks", name, "--limit", str(args.limit),
                "--batch_size", str(args.batch_size), "--log_samples", "--output_path", str(out),
            ]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"--model {backend} failed:\n{done.stderr[-3000:]}")
            results = json.loads(next(out.rglob("results_*.json")).read_text())
            samples = [json.loads(line) for line in next(out.rglob(f"samples_{name}_*.jsonl")).read_text().splitlines()]
            run = {
                "wall": seconds,
                "eval": float(results.get("total_evaluation_time_seconds", "nan")),
                "acc": results["results"][name]["acc,none"],
                "responses": {s["doc_id"]: s["filtered_resps"][0] for s in samples},
            }
            best = runs.setdefault(backend, run)
            assert run["responses"] == best["responses"], f"--model {backend}: greedy responses changed between repeats"
            best["walls"] = best.get("walls", []) + [seconds]
            best["wall"], best["eval"] = min(best["wall"], seconds), min(best["eval"], run["eval"])
    hf, prefix = runs["hf"], runs["hf-prefix"]
    same = sum(hf["responses"][d] == prefix["responses"].get(d) for d in hf["responses"])
    print(
        f"lm-eval {name}: --limit {args.limit}, {args.max_gen_toks} new tokens max, greedy, batch {args.batch_size}, "
        f"device cpu ({Path(model).name}, {torch.get_num_threads()} threads), best of {args.repeats}"
    )
    print(f"{'':22} {'wall s':>8} {'eval s':>8} {'acc':>6}  every wall time")
    for backend, r in runs.items():
        print(f"--model {backend:<14} {r['wall']:8.1f} {r['eval']:8.1f} {r['acc']:6.3f}  {', '.join(f'{w:.1f}' for w in r['walls'])}")
    print(f"speed-up (hf / hf-prefix): wall {hf['wall'] / prefix['wall']:.2f}x, evaluation {hf['eval'] / prefix['eval']:.2f}x")
    print(f"identical responses      : {same} of {len(hf['responses'])}; acc equal: {hf['acc'] == prefix['acc']}")


if __name__ == "__main__":
    main()
