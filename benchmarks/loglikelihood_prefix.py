"""Benchmark: MC verification requests through lm-eval's plain ``hf`` loglikelihood
against gapbench's shared-prefix path, on the embedded model, in the same run. The model is
loaded once as ``hf-prefix`` (``harness/models/hf_prefix.py``), whose ``loglikelihood`` runs
HFLM's own code when ``GAPBENCH_PREFIX_CACHE=0`` and the shared path otherwise.

    python benchmarks/loglikelihood_prefix.py [--task arith] [--samples 32]
    python benchmarks/loglikelihood_prefix.py --task gsm8k --data-dir ../shared/data --responses RUN/gsm8k/samples.jsonl

With ``--responses``, the requests verify a stored run's samples (a prompt's n samples share its
question, as in a run); without, each prompt's reference answer is its one sample.

Prints seconds for each path, the speed-up ratio, and the largest difference
between the two paths' log-probabilities.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="arith")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--responses", default=None, help="a run's samples.jsonl: verify its first --samples samples")
    args = ap.parse_args()

    from gapbench.harness.models import backends, prefix_cache
    from gapbench.harness.models import embedded as default_model
    from gapbench.tasks import TASKS
    from gapbench.verifiers import VERIFIERS

    task = TASKS.get(args.task)()
    mc = VERIFIERS.get("mc")()
    requests = []
    if args.responses:
        import json

        docs = {d.doc_id: d for d in task.docs(data_dir=args.data_dir)}
        with open(args.responses) as f:
            rows = [json.loads(line) for line in f][: args.samples]
        for row in rows:
            requests += [(r.context, r.continuation) for r in mc.requests(task, docs[row["doc_id"]], [row["response"]], {})]
    else:
        for doc in task.docs(data_dir=args.data_dir)[: args.samples]:
            response = f" {doc.target}" if isinstance(doc.target, str) else " 42"
            requests += [(r.context, r.continuation) for r in mc.requests(task, doc, [response], {})]
    spec = backends.resolve(None, "device=cpu", log=lambda *_: None)
    lm = backends.load(spec, args.batch_size)  # hf-prefix
    backends.loglikelihood(lm, requests[:2])  # warm-up

    os.environ["GAPBENCH_PREFIX_CACHE"] = "0"
    t = time.perf_counter()
    plain = backends.loglikelihood(lm, requests)
    t_plain = time.perf_counter() - t
    os.environ["GAPBENCH_PREFIX_CACHE"] = "1"
    t = time.perf_counter()
    shared = backends.loglikelihood(lm, requests)
    t_shared = time.perf_counter() - t

    pairs = prefix_cache.encode(lm, requests)
    print(f"task {args.task}: {len(requests)} MC requests, shared prefix {prefix_cache.shared_prefix(pairs)} tokens, "
          f"mean context {sum(len(c) for c, _ in pairs) / len(pairs):.0f} tokens ({default_model.NAME}, CPU, batch {args.batch_size})")
    print(f"lm-eval hf loglikelihood : {t_plain:7.2f} s")
    print(f"gapbench shared prefix   : {t_shared:7.2f} s")
    print(f"speed-up                 : {t_plain / t_shared:7.2f}x")
    print(f"max |difference| (nats)  : {max(abs(a - b) for a, b in zip(plain, shared)):.2e}")


if __name__ == "__main__":
    main()
