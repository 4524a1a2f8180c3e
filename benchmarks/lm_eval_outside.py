"""Outside figures for a board: lm-eval's own ``gsm8k`` task (its 5-shot prompt, its filters and its
exact_match) run on the same model, the same engine and the same GGUF as the board's runs, over the
first ``--limit`` GSM8K test prompts (the board's prompts are the first 200), written as
``outside.json`` entries for ``gapbench leaderboard build --outside``.

    OMP_NUM_THREADS=2 python benchmarks/lm_eval_outside.py --data-dir ../shared/data --limit 100 \\
        --models qwen2.5-coder-1.5b-instruct,qwen2.5-coder-0.5b-instruct,smollm2-135m-instruct,gemma3-270m \\
        --engine llama.cpp-batched --out leaderboards/four-models/outside.json

lm-eval reads the data through examples/lm-eval-local/gsm8k_local.yaml (its data files made absolute in
a temporary include path) and calls the loaded model as any lm-eval model: ``generate_until`` with the
task's own greedy settings. Each model gives two figures, lm-eval's strict-match (the ``#### N`` answer
format) and flexible-extract (the last number), each with lm-eval's standard error as an interval of
value +- 1.96 stderr within [0, 1]. Entries of the same model, task and figure already in ``--out``
are replaced; the others are kept, so models can be added one at a time. Prints each model's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from greedy_vs_lm_eval import load, local_gsm8k_yaml  # noqa: E402

FILTERS = {"strict-match": "strict-match: the '#### N' answer format", "flexible-extract": "flexible-extract: the last number in the reply"}


def figures(model: str, results: dict, limit: int, engine: str) -> list[dict]:
    """outside.json entries of lm-eval's exact_match under each of its gsm8k filters."""
    out = []
    for metrics in results.values():
        for filt, what in FILTERS.items():
            value = metrics.get(f"exact_match,{filt}")
            se = metrics.get(f"exact_match_stderr,{filt}")
            if not isinstance(value, float):
                continue
            entry = {
                "model": model,
                "task": "gsm8k",
                "split": "test",
                "figure": f"lm-eval gsm8k, exact_match ({filt})",
                "value": round(float(value), 4),
                "source": f"lm-eval's own gsm8k task (lm_eval.simple_evaluate, examples/lm-eval-local/gsm8k_local.yaml) on the board's {engine} engine and GGUF: benchmarks/lm_eval_outside.py",
                "differs": (
                    f"lm-eval's prompt (5 fixed few-shot examples, 'Question: ... Answer:'; the board: 4-shot), one greedy reply per prompt "
                    f"(the board: 4 samples at temperature 0.7, top-p 0.9), scored by {what}; the first {limit} of the board's 200 prompts"
                ),
            }
            if isinstance(se, float):
                entry["interval"] = [round(float(max(0.0, value - 1.96 * se)), 4), round(float(min(1.0, value + 1.96 * se)), 4)]
            out.append(entry)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="embedded model names, comma-separated")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--engine", default="llama.cpp-batched")
    ap.add_argument("--out", required=True, help="outside.json to write (entries of other models or figures are kept)")
    args = ap.parse_args()

    import lm_eval

    from gapbench.harness.models import backends
    from gapbench.tasks.lm_eval_task import task_manager

    out = Path(args.out)
    kept: list[dict] = json.loads(out.read_text())["figures"] if out.is_file() else []
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(tmp) / "lm-eval-tasks"
        include.mkdir()
        group = local_gsm8k_yaml(include, Path(args.data_dir))
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            spec = backends.resolve(model, None, engine=args.engine)
            start = time.perf_counter()
            lm = backends.load(spec, 16)
            try:
                res = lm_eval.simple_evaluate(model=lm, tasks=[group], task_manager=task_manager(str(include)), limit=args.limit, bootstrap_iters=1000)
            finally:
                backends.close(lm)
            took = time.perf_counter() - start
            assert res is not None
            new = figures(model, res["results"], args.limit, args.engine)
            for f in new:
                print(f"{model}: {f['figure']} = {f['value']:.3f} {f.get('interval', '')}", flush=True)
            print(f"{model}: {took:.0f} s for {args.limit} prompts (model loading included); {load()}", flush=True)
            names = {(f["model"], f["task"], f["figure"]) for f in new}
            kept = [f for f in kept if (f["model"], f["task"], f["figure"]) not in names] + new
            out.write_text(json.dumps({"figures": kept}, indent=1) + "\n")  # after each model: a later failure keeps it


if __name__ == "__main__":
    main()
