"""Benchmark: gapbench's generation and verification stages as a fraction of the engine's ceiling,
beside lm-eval's own ``hf`` path, on the embedded model, in one run.

    OMP_NUM_THREADS=2 python benchmarks/ceiling.py --data-dir ../shared/data [--prompts 8] [--ns 4,16]
        [--batch-size 32] [--lm-eval-prompts 2] [--e2e-limit 4] [--memory-prompts 2] [--skip e2e,memory]

1. **Ceilings** of this machine and model: prefill (one batched forward pass of real prompt
   tokens, no cache: tokens/s) and decode (``--batch-size`` rows stepping together on top of a
   cache as long as a GSM8K prompt: tokens/s).
2. **Generation** (GSM8K few-shot prompts, n samples each, the paper's temperature 0.7 / top-p 0.9,
   the runner's per-sample seeds) through ``prefix_generate`` as it is (each distinct context
   prefilled once), as it was (``share=False``: the call's head once, each sample's own question
   again) and through lm-eval's ``HFLM.generate_until`` (``GAPBENCH_PREFIX_CACHE=0``, on the first
   ``--lm-eval-prompts`` prompts only: it is slow). A stage's *work* is the tokens it cannot avoid:
   the call's common head once, each distinct prompt's own tokens once, and the generated tokens;
   its fraction of the ceiling is the time the ceilings need for that work (prefill tokens at the
   prefill rate, generated tokens at the decode rate) over the time it took.
3. **MC verification** of the n = 4 samples (``loglikelihood``, shared prefix) against lm-eval's
   (on the first ``4 x --lm-eval-prompts`` requests); work: every distinct context once (head once)
   and the continuations, at the prefill rate.
4. **End to end**: ``gapbench run --tasks gsm8k --n 4 --verifiers mc --limit K`` against lm-eval's
   command line (``--model hf``) sampling the same prompts 4 times (``gapbench lm-eval-tasks``
   export with ``repeats: 4`` and the same sampling settings), each a fresh process, back to back.
5. **Peak memory** of one generation call (n = 4) over 1x, 4x and 16x ``--memory-prompts`` prompts,
   each in its own process so that each peak is its own (``ru_maxrss``), and what the call added to
   the loaded model's.

The machine may be shared: every figure that is compared is measured in this run, and the ratios
are what to read.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 1234  # the runner's default


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--ns", default="4,16", help="samples per prompt, comma-separated")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-gen-toks", type=int, default=None, help="default: the task's, else 512 (as gapbench run)")
    ap.add_argument("--lm-eval-prompts", type=int, default=2, help="prompts (x n = 4 samples) through lm-eval's own path")
    ap.add_argument("--e2e-limit", type=int, default=4, help="prompts of the end-to-end comparison")
    ap.add_argument("--memory-prompts", type=int, default=2, help="the 1x of the peak-memory runs (then 4x, 16x)")
    ap.add_argument("--skip", default="", help="comma-separated: stages (1-3), lm-eval, e2e, memory")
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child is not None:
        return memory_child(args)
    skip = set(filter(None, args.skip.split(",")))
    if "stages" not in skip:
        stages(args, skip)
    # 4. end to end
    if "e2e" not in skip:
        end_to_end(args)
    # 5. peak memory
    if "memory" not in skip:
        print("\npeak memory of one generation call, n = 4 (a process each): prompts, peak RSS, added to the loaded model's")
        for k in (1, 4, 16):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(k * args.memory_prompts),
                   "--batch-size", str(args.batch_size)] + (["--data-dir", args.data_dir] if args.data_dir else [])  # fmt: skip
            if args.max_gen_toks:
                cmd += ["--max-gen-toks", str(args.max_gen_toks)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
            if done.returncode != 0:
                sys.exit(f"memory run failed:\n{done.stderr[-3000:]}")
            print(f"  {k:2}x {done.stdout.strip()}")


def stages(args, skip) -> None:
    """1-3: the ceilings, generation and MC verification."""
    import torch

    from gapbench.harness.models import backends, prefix_cache, prefix_generate
    from gapbench.harness.models import embedded as default_model
    from gapbench.verifiers import VERIFIERS

    lm, task, docs, prompts, kwargs = setup(args, args.prompts)
    encoded = prefix_generate._encode(lm, prompts, lm.max_length - kwargs["max_gen_toks"])
    P = prefix_cache.shared_prefix([(e, []) for e in encoded])
    print(
        f"gsm8k: {len(prompts)} prompts, {P} of {sum(map(len, encoded)) / len(encoded):.0f} prompt tokens shared, "
        f"max {kwargs['max_gen_toks']} new tokens, T 0.7 / top-p 0.9, batch {args.batch_size} "
        f"({default_model.NAME}, fp32, CPU, {torch.get_num_threads()} threads)"
    )

    # 1. ceilings, measured before the stages and again after them: the best of the two is the ceiling
    # (on a machine shared with other jobs a measurement is only ever slowed down)
    backends.generate(lm, [(prompts[0], {**kwargs, "max_gen_toks": 2})])  # warm-up
    ceilings = [(prefill_ceiling(lm, encoded), decode_ceiling(lm, encoded[0], args.batch_size, steps=16))]

    def generate(reqs, share=True, plain=False):
        os.environ["GAPBENCH_PREFIX_CACHE"] = "0" if plain else "1"
        start = time.perf_counter()
        out = backends.generate(lm, reqs) if plain else prefix_generate.generate(lm, reqs, share=share)
        seconds = time.perf_counter() - start
        os.environ["GAPBENCH_PREFIX_CACHE"] = "1"
        return out, seconds

    rows = []  # (stage, requests, seconds, prefill tokens of work, generated tokens)

    def work(ctx_tokens, continuations=()):
        """The call's common head once, each distinct context's own tokens once, and the continuations."""
        head = prefix_cache.shared_prefix([(e, []) for e in ctx_tokens])
        return head + sum(len(e) - head for e in {tuple(e) for e in ctx_tokens}) + sum(map(len, continuations))

    def row(name, reqs, texts, seconds):
        gen = sum(len(lm.tok_encode(t)) for t in texts)
        rows.append((name, len(reqs), seconds, work([encoded[prompts.index(c)] for c, _ in reqs]), gen))
        print(f"  {name}: {len(reqs)} requests, {seconds:.1f} s", flush=True)

    # 2. generation
    samples4 = None
    for n in [int(x) for x in args.ns.split(",")]:
        reqs = requests(task, docs, prompts, kwargs, n)
        now, t_now = generate(reqs)
        row(f"generate n={n}: gapbench", reqs, now, t_now)
        before, t_before = generate(reqs, share=False)
        row(f"generate n={n}: before (head only)", reqs, before, t_before)
        same = sum(a == b for a, b in zip(now, before))
        print(f"  n={n}: speed-up over before {t_before / t_now:.2f}x; the same text for {same} of {len(reqs)} seeded samples")
        if n == 4:
            samples4 = now
            if "lm-eval" not in skip:
                sub = reqs[: 4 * args.lm_eval_prompts]
                plain, t_plain = generate(sub, plain=True)
                row("generate n=4: lm-eval HFLM", sub, plain, t_plain)
                print(f"  n=4 per sample: gapbench {t_now / len(reqs):.2f} s, lm-eval {t_plain / len(sub):.2f} s "
                      f"({t_plain / len(sub) / (t_now / len(reqs)):.1f}x)")

    # 3. MC verification of the n = 4 samples
    if samples4 is not None:
        mc = VERIFIERS.get("mc")()
        lls = []
        for k, doc in enumerate(docs):
            lls += [(r.context, r.continuation) for r in mc.requests(task, doc, samples4[4 * k : 4 * k + 4], {})]
        for name, reqs, plain in [("verify MC: gapbench", lls, False), ("verify MC: lm-eval HFLM", lls[: 8 * args.lm_eval_prompts], True)]:
            if plain and "lm-eval" in skip:
                continue
            os.environ["GAPBENCH_PREFIX_CACHE"] = "0" if plain else "1"
            start = time.perf_counter()
            backends.loglikelihood(lm, reqs)
            seconds = time.perf_counter() - start
            os.environ["GAPBENCH_PREFIX_CACHE"] = "1"
            pairs = prefix_cache.encode(lm, reqs)
            rows.append((name, len(reqs), seconds, work([c for c, _ in pairs], [x for _, x in pairs]), 0))
            print(f"  {name}: {len(reqs)} requests, {seconds:.1f} s", flush=True)

    ceilings.append((prefill_ceiling(lm, encoded), decode_ceiling(lm, encoded[0], args.batch_size, steps=16)))
    prefill_rate, decode_rate = max(c[0] for c in ceilings), max(c[1] for c in ceilings)
    print(f"\nceiling  prefill {prefill_rate:5.0f} tokens/s (batched forward, 4 x 512 tokens; {' and '.join(f'{c[0]:.0f}' for c in ceilings)})   "
          f"decode {decode_rate:5.0f} tokens/s (batch {args.batch_size}, cache of {len(encoded[0])} tokens; {' and '.join(f'{c[1]:.0f}' for c in ceilings)})")
    print(f"\n{'stage':34} {'requests':>8} {'seconds':>8} {'prefill':>8} {'generated':>9} {'tokens/s':>9} {'of ceiling':>10}")
    for name, count, seconds, prefill, gen in rows:
        ideal = prefill / prefill_rate + gen / decode_rate
        print(f"{name:34} {count:8} {seconds:8.1f} {prefill:8} {gen:9} {(prefill + gen) / seconds:9.1f} {ideal / seconds:10.2f}")


def setup(args, k: int):
    from gapbench.harness.config import Sampling
    from gapbench.harness.models import backends
    from gapbench.tasks import TASKS

    task = TASKS.get("gsm8k")()
    docs = task.docs(data_dir=args.data_dir)[:k]
    prompts = [task.generation_prompt(d) for d in docs]
    kwargs = Sampling().gen_kwargs(list(task.stop), args.max_gen_toks or task.max_gen_toks)
    spec = backends.resolve(None, "device=cpu", log=lambda *_: None)
    lm = backends.load(spec, args.batch_size)  # hf-prefix, as gapbench loads it on a CPU
    return lm, task, docs, prompts, kwargs


def requests(task, docs, prompts, kwargs, n: int):
    """n samples per prompt, each with the seed the runner gives it."""
    from gapbench.harness.runner import seeded

    return [(p, seeded(kwargs, SEED, d.doc_id, i)) for d, p in zip(docs, prompts) for i in range(n)]


def prefill_ceiling(lm, encoded) -> float:
    import torch

    ids = torch.tensor([(e * 2)[:512] for e in (encoded * 4)[:4]])
    with torch.no_grad():
        lm.model(ids[:, :64])
        start = time.perf_counter()
        lm.model(ids)
        return ids.numel() / (time.perf_counter() - start)


def decode_ceiling(lm, context, rows: int, steps: int) -> float:
    import torch

    with torch.no_grad():
        out = lm.model(torch.tensor([context]), use_cache=True)
        cache = out.past_key_values
        cache.batch_repeat_interleave(rows)
        token = out.logits[:, -1].argmax(-1).repeat(rows).view(-1, 1)
        start = time.perf_counter()
        for s in range(steps):
            pos = torch.full((rows, 1), len(context) + s)
            out = lm.model(token, past_key_values=cache, position_ids=pos, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1].argmax(-1).view(-1, 1)
        return rows * steps / (time.perf_counter() - start)


def memory_child(args) -> None:
    from gapbench.harness.models import prefix_generate

    lm, task, docs, prompts, kwargs = setup(args, args.memory_child)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = prefix_generate.generate(lm, requests(task, docs, prompts, kwargs, 4))
    assert out is not None and len(out) == 4 * len(prompts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{len(prompts):4} prompts: {peak / 1024:7.0f} MB peak, +{(peak - loaded) / 1024:5.0f} MB over the loaded model")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def end_to_end(args) -> None:
    """``gapbench run`` (generation n = 4 + MC) against lm-eval's ``hf`` sampling the same prompts 4 times."""
    from gapbench.harness import lm_eval_tasks
    from gapbench.harness.config import Sampling
    from gapbench.tasks import TASKS

    task = TASKS.get("gsm8k")()
    kwargs = Sampling().gen_kwargs(list(task.stop), args.max_gen_toks or task.max_gen_toks)
    from gapbench.harness.models import embedded as default_model

    model = str(default_model.ensure(log=lambda *_: None))
    name = lm_eval_tasks.lm_eval_name("gsm8k")
    data = ["--data-dir", str(Path(args.data_dir).resolve())] if args.data_dir else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = lm_eval_tasks.generate(Path(tmp) / "tasks", tasks=["gsm8k"], data_dir=args.data_dir, max_gen_toks=kwargs["max_gen_toks"])
        for path in folder.rglob("*.yaml"):
            if name in path.read_text():
                path.write_text(path.read_text() + "repeats: 4\n")
        sampling = f"do_sample=True,temperature={kwargs['temperature']},top_p={kwargs['top_p']}"
        commands = {
            "gapbench run (n=4 + MC)": [sys.executable, "-m", "gapbench.harness.cli", "run", "--tasks", "gsm8k", "--n", "4", "--verifiers", "mc",
                                        "--limit", str(args.e2e_limit), "--batch-size", str(args.batch_size), "--max-gen-toks", str(kwargs["max_gen_toks"]),
                                        "--out", str(Path(tmp) / "run"), *data],
            "lm-eval hf (generation n=4)": [sys.executable, "-m", "gapbench.harness.models.lm_eval_cli", "--model", "hf", "--model_args",
                                            f"pretrained={model}", "--device", "cpu", "--include_path", str(folder), "--tasks", name,
                                            "--limit", str(args.e2e_limit), "--batch_size", str(args.batch_size), "--gen_kwargs", sampling,
                                            "--output_path", str(Path(tmp) / "lm_eval")],
        }  # fmt: skip
        walls = {}
        for label, command in commands.items():
            start = time.perf_counter()
            done = subprocess.run(command, env=_env(), cwd=tmp, capture_output=True, text=True)
            walls[label] = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"{label} failed:\n{done.stderr[-3000:]}")
        samples = next((Path(tmp) / "run").rglob("samples.jsonl"), None)
        count = len(samples.read_text().splitlines()) if samples else "?"
    print(f"\nend to end, gsm8k --limit {args.e2e_limit}, 4 samples per prompt, batch {args.batch_size}, fresh processes (model loading included)")
    for label, wall in walls.items():
        print(f"  {label:30} {wall:7.1f} s")
    print(f"  lm-eval / gapbench: {walls['lm-eval hf (generation n=4)'] / walls['gapbench run (n=4 + MC)']:.2f}x  (gapbench stored {count} samples)")


if __name__ == "__main__":
    main()
