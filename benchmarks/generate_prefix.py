"""Benchmark: sampling through lm-eval's plain ``hf`` generate_until against gapbench's
shared-prefix, continuous-batching path (``harness/models/prefix_generate.py``), on the embedded
model, in the same run. The model is loaded once, as gapbench loads it on a CPU: ``hf-prefix``
(``harness/models/hf_prefix.py``), whose ``generate_until`` runs HFLM's own code when
``GAPBENCH_PREFIX_CACHE=0`` and the shared path otherwise.

    python benchmarks/generate_prefix.py [--task gsm8k --data-dir ../shared/data] [--prompts 8] [--n 4]

Both paths get the same requests (the task's few-shot prompts, n samples each, the paper's
temperature 0.7 / top-p 0.9, the task's stop sequences) and the same batch size. Prints
seconds and seconds per sample for each path, the speed-up, generated tokens, and, for a
greedy re-run of the first prompts, whether both paths give the same text.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-gen-toks", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--greedy-prompts", type=int, default=4)
    args = ap.parse_args()

    import torch

    from gapbench.harness.config import Sampling
    from gapbench.harness.models import backends, prefix_cache
    from gapbench.harness.models import embedded as default_model
    from gapbench.tasks import TASKS

    task = TASKS.get(args.task)()
    docs = task.docs(args.split, data_dir=args.data_dir)[: args.prompts]
    prompts = [task.generation_prompt(d) for d in docs]
    kwargs = Sampling(max_gen_toks=args.max_gen_toks).gen_kwargs(list(task.stop))
    requests = [(p, kwargs) for p in prompts for _ in range(args.n)]
    spec = backends.resolve(None, "device=cpu", log=lambda *_: None)
    lm = backends.load(spec, args.batch_size)  # hf-prefix
    backends.generate(lm, requests[:1])  # warm-up

    def timed(enabled: bool, reqs):
        os.environ["GAPBENCH_PREFIX_CACHE"] = "1" if enabled else "0"
        torch.manual_seed(0)
        t = time.perf_counter()
        out = backends.generate(lm, reqs)
        return out, time.perf_counter() - t

    plain, t_plain = timed(False, requests)
    shared, t_shared = timed(True, requests)
    greedy = Sampling(temperature=0.0, max_gen_toks=args.max_gen_toks).gen_kwargs(list(task.stop))
    check = [(p, greedy) for p in prompts[: args.greedy_prompts]]
    same = sum(a == b for a, b in zip(timed(False, check)[0], timed(True, check)[0]))

    def tokens(texts):
        return sum(len(lm.tok_encode(t)) for t in texts)

    encoded = [lm.tok_encode(p) for p in prompts]
    print(
        f"task {args.task}: {len(prompts)} prompts x {args.n} samples, max {args.max_gen_toks} new tokens, "
        f"shared prefix {prefix_cache.shared_prefix([(e, []) for e in encoded])} of {sum(map(len, encoded)) / len(encoded):.0f} "
        f"prompt tokens ({default_model.NAME}, CPU, {torch.get_num_threads()} threads, batch {args.batch_size})"
    )
    print(f"lm-eval hf generate_until : {t_plain:7.1f} s  {t_plain / len(requests):5.2f} s/sample  {tokens(plain)} tokens")
    print(f"gapbench prefix_generate  : {t_shared:7.1f} s  {t_shared / len(requests):5.2f} s/sample  {tokens(shared)} tokens")
    print(f"speed-up                  : {t_plain / t_shared:7.2f}x")
    print(f"greedy, same text         : {same} of {len(check)} prompts")


if __name__ == "__main__":
    main()
