"""Benchmark: the same GSM8K work (n samples per prompt, MC verification) on the transformers path
(the embedded model de-quantised to float32, ``hf-prefix``) and on llama.cpp (the wheel's own Q4_1
GGUF file on llama.cpp's server, ``--engine llama.cpp``), and lm-eval's own ``hf``
``generate_until`` on the same generation requests, measured in one run.

    python benchmarks/llamacpp.py --data-dir ../shared/data [--prompts 4] [--n 4] [--max-gen-toks 128]

Each engine does a whole ``gapbench run`` (generation, then MC verification, then scoring) into a
fresh folder; the seconds of each stage come from the run's own timings. lm-eval's time is its
plain ``generate_until`` (``GAPBENCH_PREFIX_CACHE=0``: HFLM's own code) on the same requests, in
the same process. Prints seconds per stage, the ratios against the transformers path, and J of
each engine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-gen-toks", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp server threads")
    args = ap.parse_args()

    from gapbench.harness.config import Sampling
    from gapbench.harness.models import backends
    from gapbench.harness.runner import Runner, RunOptions
    from gapbench.tasks import TASKS

    base = dict(tasks=["gsm8k"], data_dir=args.data_dir, limit=args.prompts, n=args.n, max_gen_toks=args.max_gen_toks,
                verifiers=["mc"], batch_size=args.batch_size, n_boot=200)  # fmt: skip
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("transformers", {}), ("llama.cpp", {"engine": "llama.cpp", "model_args": f"n_threads={args.threads}"})):
            start = time.perf_counter()
            result = Runner(RunOptions(**base, **extra, out=os.path.join(tmp, name)), log=lambda *_: None).run()[0]
            rows[name] = {**result.timings, "wall": time.perf_counter() - start, "J": result.generation.J.value, "tokens": result.tokens.generated}

    task = TASKS.get("gsm8k")()
    docs = task.docs("test", args.data_dir, args.prompts)
    kwargs = Sampling(max_gen_toks=args.max_gen_toks).gen_kwargs(list(task.stop))
    requests = [(task.generation_prompt(d), kwargs) for d in docs for _ in range(args.n)]
    lm = backends.load(backends.resolve(None, "device=cpu", log=lambda *_: None), args.batch_size)
    os.environ["GAPBENCH_PREFIX_CACHE"] = "0"  # HFLM's own generate_until
    start = time.perf_counter()
    backends.generate(lm, requests)
    lm_eval_generate = time.perf_counter() - start

    t, c = rows["transformers"], rows["llama.cpp"]
    print(f"GSM8K, {args.prompts} prompts x n={args.n}, max {args.max_gen_toks} new tokens, MC verification; {os.cpu_count()} CPUs")
    print(f"{'':24}{'transformers':>14}{'llama.cpp':>12}{'lm-eval hf':>12}")
    print(f"{'generate (s)':24}{t['generate']:>14.1f}{c['generate']:>12.1f}{lm_eval_generate:>12.1f}")
    print(f"{'verify mc (s)':24}{t['verify:mc']:>14.1f}{c['verify:mc']:>12.1f}{'':>12}")
    print(f"{'whole run, wall (s)':24}{t['wall']:>14.1f}{c['wall']:>12.1f}{'':>12}")
    print(f"{'generated tokens':24}{t['tokens']:>14}{c['tokens']:>12}{'':>12}")
    print(f"{'J':24}{t['J']:>14.3f}{c['J']:>12.3f}{'':>12}")
    print(f"llama.cpp / transformers: generate {c['generate'] / t['generate']:.2f}x, verify mc {c['verify:mc'] / t['verify:mc']:.2f}x, whole run {c['wall'] / t['wall']:.2f}x")
    print(f"lm-eval hf generate / transformers (gapbench) generate: {lm_eval_generate / t['generate']:.2f}x; llama.cpp / lm-eval: {c['generate'] / lm_eval_generate:.2f}x")


if __name__ == "__main__":
    main()
